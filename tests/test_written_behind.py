"""With one experiment in flight, an experiment that moves nothing (a discard, say) is written
while the next command runs; a keep is written at once; every other write writes it first.
And the console script ends without freeing its objects one by one, once its work is done."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from overnight.core.budget import Budget, Spend
from overnight.core.events import Events
from overnight.core.record import ExperimentRecord, Recorder
from overnight.core.schedule import Scheduler
from overnight.core.state import Best, RunState
from overnight.core.store import Store
from tests.data.core.kit import recipe


class Agent:
    name = "listening"

    def __init__(self):
        self.seen = []

    def observe(self, attempt):
        self.seen.append((attempt.seq, attempt.status))


def _recorder(tmp_path: Path, defer: bool = True) -> tuple[Store, int, Recorder, Agent]:
    store = Store(tmp_path / "store.db")
    run_id = store.start_run(recipe="r", recipe_path="r", recipe_text="", recipe_digest="d", config="{}",
                             goal="maximize", source_path="x", source_fingerprint="f")
    state = RunState(Spend())
    agent = Agent()
    recorder = Recorder(store, run_id, state, Events(), agent, defer=defer)
    base = ExperimentRecord(0, candidate="c0", view="base")
    base.scored([1.0], 1.0)
    recorder.record_baseline(base, "base", 0.0)
    return store, run_id, recorder, agent


def _stored(store: Store, run_id: int) -> list[tuple[int, str]]:
    return store.conn.execute("select seq, status from experiments where run_id = ? order by id", [run_id]).fetchall()


def _experiment(seq: int, score: float) -> ExperimentRecord:
    rec = ExperimentRecord(seq, f"idea {seq}", candidate=f"c{seq}", view=f"view {seq}")
    rec.scored([score], 1.0)
    return rec


def test_a_discard_waits_for_the_next_command_and_a_keep_writes_it_first(tmp_path):
    store, run_id, recorder, agent = _recorder(tmp_path)
    recorder.record(_experiment(1, 0.5), "discard", "worse")
    assert _stored(store, run_id) == [(0, "baseline")]  # not yet: the next command's time writes it
    assert agent.seen == [(1, "discard")]  # the agent hears of it at once, to propose the next
    assert len(recorder.behind()) == 1

    recorder.record(_experiment(2, 2.0), "keep", "better", "view 2")
    assert _stored(store, run_id) == [(0, "baseline"), (1, "discard"), (2, "keep")]
    assert recorder.behind() == ()
    assert store.run(run_id)["best_experiment"] == recorder.state.best.exp_id


def test_the_write_left_for_later_is_done_by_the_command_that_runs_next(tmp_path):
    from overnight.core import process

    store, run_id, recorder, _ = _recorder(tmp_path)
    recorder.record(_experiment(1, 0.5), "discard", "worse")
    with process.meanwhile(*recorder.behind()):
        process.run([sys.executable, "-c", "import time; time.sleep(0.3)"], cwd=tmp_path, seconds=10)
    # A reader in another process sees it while nothing else was written.
    other = sqlite3.connect(tmp_path / "store.db")
    assert other.execute("select seq, status from experiments where run_id = ? order by id", [run_id]).fetchall() \
        == [(0, "baseline"), (1, "discard")]
    recorder.flush()  # done already: nothing is written twice
    assert _stored(store, run_id) == [(0, "baseline"), (1, "discard")]


def test_a_store_another_process_is_writing_is_not_waited_for_while_a_command_runs(tmp_path):
    from overnight.core import process

    store, run_id, recorder, _ = _recorder(tmp_path)
    recorder.record(_experiment(1, 0.5), "discard", "worse")
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    other.execute("begin immediate")  # another process holds the write lock, for longer than the time limit
    with process.meanwhile(*recorder.behind()):
        done = process.run([sys.executable, "-c", "import time; time.sleep(0.2)"], cwd=tmp_path, seconds=5)
    assert not done.timed_out and 0.15 < done.seconds < 2
    assert len(recorder.behind()) == 1  # left for later, nothing written
    other.execute("commit")
    recorder.flush()
    assert _stored(store, run_id) == [(0, "baseline"), (1, "discard")]


def test_a_command_that_ended_while_its_thread_did_other_work_is_no_timeout(tmp_path):
    from overnight.core import process

    with process.meanwhile(lambda: time.sleep(1.5)):  # longer than the command's limit
        done = process.run([sys.executable, "-c", "import time; time.sleep(0.1)"], cwd=tmp_path, seconds=1)
    assert not done.timed_out and done.returncode == 0


def test_a_long_view_is_stored_at_once(tmp_path):
    store, run_id, recorder, _ = _recorder(tmp_path)
    rec = _experiment(1, 0.5)
    rec.view = "x" * 100_000
    recorder.record(rec, "discard", "worse")
    assert _stored(store, run_id) == [(0, "baseline"), (1, "discard")]


def test_the_runs_totals_are_written_with_it_and_before_the_runs_end(tmp_path):
    store, run_id, recorder, _ = _recorder(tmp_path)
    recorder.record(_experiment(1, 0.5), "discard", "worse")
    recorder.save_totals(status="finished")
    assert _stored(store, run_id) == [(0, "baseline"), (1, "discard")]
    assert store.run(run_id)["experiments"] == 1


def test_with_several_experiments_in_flight_each_is_written_at_once(tmp_path):
    store, run_id, recorder, _ = _recorder(tmp_path, defer=False)
    recorder.record(_experiment(1, 0.5), "discard", "worse")
    assert _stored(store, run_id) == [(0, "baseline"), (1, "discard")]
    assert recorder.behind() == ()


def test_a_paused_run_writes_what_it_left_for_later_before_it_waits(tmp_path):
    store, run_id, recorder, _ = _recorder(tmp_path)
    recorder.record(_experiment(1, 0.5), "discard", "worse")
    scheduler = Scheduler(store, Budget(), "maximize")
    scheduler.run_id, scheduler.settle = run_id, recorder.flush
    store.set_control(run_id, "pause")

    async def pause_then_stop():
        waiting = asyncio.ensure_future(scheduler._obey_controls())
        await asyncio.sleep(0.1)
        seen = _stored(store, run_id)
        scheduler.stopping = "stopped"
        await waiting
        return seen

    assert asyncio.run(pause_then_stop()) == [(0, "baseline"), (1, "discard")]


def test_a_run_with_one_experiment_in_flight_stores_every_experiment_in_order(workspace, cli):
    folder = recipe(workspace / "r", proposals=["x" * 10 + "\n", "x\n", "x" * 12 + "\n", "y\n", "x" * 14 + "\n", "z\n"], budget="parallel = 1")
    done = cli("run", folder, "--yes")
    assert done.exit_code == 0, done.output
    conn = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    rows = conn.execute("select seq, status from experiments order by id").fetchall()
    assert [seq for seq, _ in rows] == list(range(len(rows)))
    assert {status for _, status in rows} >= {"baseline", "keep", "discard"}
    run = conn.execute("select experiments, status from runs").fetchone()
    assert run == (6, "finished")


def _console(args: list[str], cwd: Path, code: str = "") -> subprocess.CompletedProcess:
    """overnight as its console script runs it, with `code` run first in the same process."""
    program = f"import sys; sys.argv = ['overnight', *{args!r}]\n{code}\nfrom overnight.cli.console import main\nmain()"
    return subprocess.run([sys.executable, "-c", program], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_console_script_runs_its_exit_handlers_and_keeps_its_exit_code(tmp_path):
    mark = tmp_path / "handled.txt"
    handler = f"import atexit; atexit.register(lambda: open({str(mark)!r}, 'w').write('done'))"
    done = _console(["show", "1:1", "--db", str(tmp_path / "none.db")], tmp_path, handler)
    assert done.returncode == 1 and "No overnight store" in done.stderr
    assert mark.read_text() == "done"

    done = _console(["log", "--all", "--last", "3"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_the_console_script_writes_all_its_output_before_it_ends(workspace):
    folder = recipe(workspace / "r", proposals=[("x" * n) + "\n" for n in range(2, 40)], budget="parallel = 1")
    ran = _console(["run", str(folder), "--yes"], workspace)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.rstrip().splitlines()[-1].startswith("Next: overnight log 1")
    listed = _console(["log", "1", "--all"], workspace)
    assert listed.returncode == 0
    assert len([line for line in listed.stdout.splitlines() if line.split()[:1] and line.split()[0].isdigit()]) == 39
    exported = _console(["export", "1", "--format", "jsonl", "-o", "ledger.jsonl"], workspace)
    assert exported.returncode == 0, exported.stderr
    assert len((workspace / "ledger.jsonl").read_text().splitlines()) == 39  # a file of its own, closed whole


def test_the_console_script_waits_for_a_thread_still_at_work(tmp_path):
    mark = tmp_path / "late.txt"
    worker = ("import threading, time\n"
              f"def late():\n    time.sleep(0.5); open({str(mark)!r}, 'w').write('written')\n"
              "threading.Thread(target=late).start()")
    done = _console(["--help"], tmp_path, worker)
    assert done.returncode == 0
    assert mark.read_text() == "written"
