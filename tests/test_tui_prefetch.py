"""`overnight tui` on a store of one run: the run's ledger is read by a process of its own while
the UI is imported (tui/prefetch.py), and the dashboard takes it in as it would have read it.

Each case runs in a fresh interpreter, as the console script does: the process forks before
anything else starts a thread. They need two cores, as the prefetch itself does.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from overnight.core.store import Store
from overnight.tui import prefetch
from tests.tui_support import copy_store, run_once

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork") or prefetch._cores() < 2,
                                reason="the ledger is read ahead only with fork and two cores")

# Starts the prefetch, takes it for one run id, then reads the same ledger as the UI does without
# it; prints what was taken, whether it equals the UI's own read, and whether the child was reaped.
TAKE = """
import json, os, sys, time
from pathlib import Path
from overnight.tui import prefetch
from overnight.tui.data import Data

db, run_id = Path(sys.argv[1]), int(sys.argv[2])
exec(sys.argv[3] if len(sys.argv) > 3 else "")  # what the case changes before the reader starts
prefetch.start(db)
exec(sys.argv[4] if len(sys.argv) > 4 else "")  # and after: the reader has its own copy of everything
pending = prefetch._pending
ahead = prefetch.take(db, run_id)
try:
    os.waitpid(pending.pid, os.WNOHANG)
    reaped = False
except (ChildProcessError, AttributeError):
    reaped = True
own = Data(db).ledger(run_id) if ahead is not None else None
print(json.dumps({"started": pending is not None, "taken": ahead is not None, "reaped": reaped,
                  "rows": len(ahead) if ahead is not None else None,
                  "same": ahead is not None and ahead.packed() == own.packed()}))
"""


def fresh_python(code: str, *args) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing from the child either
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return run_once(tmp_path_factory.mktemp("made"))


@pytest.fixture
def db(made, workspace) -> Path:
    """The made run and 3,000 more experiments of every status, one of them of a status this
    version does not know, recorded through the store as the loop records them."""
    db = copy_store(made[1], workspace / "store.db")
    store = Store(db)
    statuses = ["discard", "keep", "crash", "guard_failed", "a status from a newer version"]
    for seq in range(7, 3007):
        status = statuses[seq % len(statuses)]
        store.record_experiment(1, seq=seq, status=status, score=None if status == "crash" else 40.0 + seq % 11,
                                delta=None if status == "crash" else seq % 11 - 4.0, rationale=f"idea {seq}")
    store.close()
    return db


def test_the_only_runs_ledger_read_ahead_is_the_one_the_dashboard_would_read(db):
    report = fresh_python(TAKE, db, 1)
    assert report == {"started": True, "taken": True, "reaped": True, "rows": 3007, "same": True}


@pytest.fixture(scope="module")
def long_db(made, tmp_path_factory) -> Path:
    """The made run and 10,000 more experiments: read in batches of 4,096, so sent in several parts."""
    db = copy_store(made[1], tmp_path_factory.mktemp("long") / "store.db")
    store = Store(db)
    for seq in range(7, 10007):
        store.record_experiment(1, seq=seq, status="keep" if seq % 7 == 0 else "discard", score=40.0 + seq % 13,
                                delta=seq % 13 - 6.0, rationale=f"idea {seq}")
    store.close()
    return db


def test_a_ledger_sent_in_many_parts_is_whole_and_the_same(long_db):
    report = fresh_python(TAKE, long_db, 1, "prefetch.PART_ROWS = 1000")
    assert report == {"started": True, "taken": True, "reaped": True, "rows": 10007, "same": True}


# The reader dies (as a kill would end it) once it has sent its first part: 4,096 rows, parts of 500 at least.
DIES = """
import overnight.tui.data as data
prefetch.PART_ROWS = 500
whole = data.read_ledger
def dying(store, run_id, each=None):
    def after_each(ledger):
        each(ledger)
        if len(ledger) >= 2000:
            os._exit(3)
    return whole(store, run_id, after_each)
data.read_ledger = dying
"""


def test_a_reader_that_dies_halfway_gives_nothing_and_the_ui_reads_its_own(long_db):
    report = fresh_python(TAKE, long_db, 1, DIES, "data.read_ledger = whole")
    assert report == {"started": True, "taken": False, "reaped": True, "rows": None, "same": False}


def test_asked_for_another_run_the_ui_reads_its_own(db):
    report = fresh_python(TAKE, db, 2)
    assert report == {"started": True, "taken": False, "reaped": True, "rows": None, "same": False}


def test_a_store_of_several_runs_is_not_read_ahead(db):
    conn = sqlite3.connect(db)
    conn.execute("insert into runs (recipe, status) values ('another', 'finished')")
    conn.commit()
    conn.close()
    report = fresh_python(TAKE, db, 1)
    assert report["started"] and not report["taken"] and report["reaped"]


def test_no_store_starts_nothing_and_makes_no_file(workspace):
    missing = workspace / ".overnight" / "overnight.db"
    report = fresh_python(TAKE, missing, 1)
    assert report == {"started": False, "taken": False, "reaped": True, "rows": None, "same": False}
    assert not missing.parent.exists()


def test_a_store_the_child_cannot_read_leaves_the_ui_to_say_why(workspace):
    broken = workspace / "broken.db"
    broken.write_bytes(b"this is not a database, whatever its name says" * 100)
    before = broken.read_bytes()
    report = fresh_python(TAKE, broken, 1)  # the child fails in silence; stderr stays empty
    assert report["started"] and not report["taken"] and report["reaped"]
    assert broken.read_bytes() == before


def test_a_ui_that_closes_first_ends_the_reader(db):
    code = """
import json, os, sys, time
from pathlib import Path
from overnight.tui import prefetch
prefetch.start(Path(sys.argv[1]))
pid = prefetch._pending.pid
began = time.perf_counter()
prefetch.discard()
try:
    os.kill(pid, 0)
    gone = False
except ProcessLookupError:
    gone = True
print(json.dumps({"gone": gone, "pending": prefetch._pending is not None, "seconds": time.perf_counter() - began}))
"""
    report = fresh_python(code, db)
    assert report["gone"] and not report["pending"]


def test_the_dashboard_opens_on_the_ledger_read_ahead(db):
    # As `overnight tui` starts (cli/tui.py): the reader first, then the UI, headless.
    code = """
import json, sys
from pathlib import Path
from overnight.tui import prefetch
db = Path(sys.argv[1])
prefetch.start(db)
taken = []
original = prefetch.take
prefetch.take = lambda path, run_id: taken.append(original(path, run_id)) or taken[-1]
from overnight.tui.app import OvernightApp
from overnight.tui.dashboard import Dashboard
from overnight.tui.experiment_table import ExperimentTable
from overnight.tui.score_plot import ScorePlot
shown = {}

class Watched(OvernightApp):
    def on_mount(self):
        self.set_interval(0.02, self.check)

    def check(self):
        screen = self.screen
        if isinstance(screen, Dashboard) and screen.query(ExperimentTable) and len(screen.query_one(ExperimentTable).rows) >= 3007:
            shown["rows"] = len(screen.query_one(ExperimentTable).rows)
            shown["plotted"] = len(screen.query_one(ScorePlot).ledger)
            shown["newest"] = screen.query_one(ExperimentTable).rows[-1]["rationale"]
            self.exit()

Watched(db).run(headless=True, size=(80, 24))
print(json.dumps({**shown, "from_the_reader": [t is not None for t in taken]}))
"""
    report = fresh_python(code, db)
    assert report == {"rows": 3007, "plotted": 3007, "newest": "idea 3006", "from_the_reader": [True]}
