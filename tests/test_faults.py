"""Fault injection: overnight is SIGKILLed at each named commit point (core/faults.py), then
resumed, and nothing is lost, nothing is done twice, nothing is left behind.

For each point, with parallel 1 and 4: every proposal is recorded exactly once; the run's
best and baseline are what its experiments say; the store passes `PRAGMA integrity_check`;
the user's file is byte-identical; no process of the killed run is left; no work folder is
left. Applies killed half-way leave the file old or new and whole, every backup whole, no
temporary file in the user's folder, and the next apply is not refused.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overnight.core.faults import POINTS
from overnight.core.files import TMP_MARK
from overnight.core.state import from_rows
from tests.data.core.kit import alive, experiments, lines_recorded, no_traceback, recipe, rows

# Scores are the views' lengths (maximize): keeps at 16, 21 and 26, discards between them.
LENGTHS = [15, 10, 12, 13, 20, 18, 25, 11]
VIEWS = [("x" * n) + "\n" for n in LENGTHS]
LOOP_POINTS = [p for p in POINTS if not p.startswith("apply.")]
APPLY_POINTS = [p for p in POINTS if p.startswith("apply.")]


def overnight(workspace: Path, *args, kill_at: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(workspace / "tmp")}
    env.pop("OVERNIGHT_KILL_AT", None)
    env.pop("OVERNIGHT_DB", None)
    if kill_at:
        env["OVERNIGHT_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "overnight.cli.main", *map(str, args)], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def tagged(pid: int) -> list[int]:
    """Processes still carrying the process tag of overnight process `pid` (core/process.py)."""
    marker = f"OVERNIGHT_PROCESS_TAG={pid}-".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if any(v.startswith(marker) for v in (entry / "environ").read_bytes().split(b"\0")):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def left_behind(pid: int, seconds: float = 10) -> list[int]:
    """Processes of overnight `pid` still running once none was seen for half a second. One look is
    not enough: a command that was still starting as overnight died carries its tag only once it
    runs, a moment after a look that found nothing."""
    deadline, clear_since = time.monotonic() + seconds, None
    while (now := time.monotonic()) < deadline:
        found = [p for p in tagged(pid) if alive(p)]
        clear_since = None if found else clear_since or now
        if clear_since is not None and now - clear_since >= 0.5:
            return []
        time.sleep(0.05)
    return found


def killed_pid(db: Path) -> int:
    return rows(db, "select pid from runs order by id limit 1")[0]["pid"]


def assert_nothing_lost(workspace: Path, db: Path, folder: Path, original: bytes, done) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    assert no_traceback(done.stdout + done.stderr)
    assert sorted(lines_recorded(db, measured_only=True)) == list(range(1, len(VIEWS) + 1))
    exps = experiments(db)
    assert len({e["seq"] for e in exps}) == len(exps)
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "finished"
    base, best = from_rows(exps, run["goal"])
    assert (run["baseline_experiment"], run["baseline_score"]) == (base["id"], base["score"]) == (base["id"], 6.0)
    assert (run["best_experiment"], run["best_score"]) == (best["id"], best["score"]) == (best["id"], max(LENGTHS) + 1.0)
    assert "Score (maximize): baseline 6 -> best 26" in done.stdout
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert (folder / "doc.txt").read_bytes() == original
    assert list((workspace / "tmp").glob("overnight-work-*")) == []


@pytest.mark.parametrize("parallel", [1, 4])
@pytest.mark.parametrize("point", LOOP_POINTS)
def test_a_kill_at_each_commit_point_loses_nothing(workspace, point, parallel):
    folder = recipe(workspace / "r", proposals=VIEWS, budget=f"parallel = {parallel}")
    (workspace / "tmp").mkdir()
    db = workspace / ".overnight" / "overnight.db"
    original = (folder / "doc.txt").read_bytes()
    nth = 3 if point.startswith("experiment.") else 1  # half-way through the experiments
    first = overnight(workspace, "run", folder, "--yes", "-q", kill_at=f"{point}@{nth}")
    assert first.returncode == -9, first.stdout + first.stderr
    pid = killed_pid(db)
    assert left_behind(pid) == []

    done = overnight(workspace, "run", folder, "--resume", "--yes", "-q")
    assert_nothing_lost(workspace, db, folder, original, done)


def test_a_metric_and_what_it_started_die_with_a_killed_run(workspace):
    """A `sleep 45` metric and a `setsid sleep` it left behind do not survive a SIGKILL of overnight."""
    script = 'echo $$ > "$OVERNIGHT_RECIPE_DIR/metric.pid"\nsetsid sleep 333 &\nsleep 45\nwc -c < "$1"\n'
    folder = recipe(workspace / "r", proposals=VIEWS[:1], metric='kind = "command"\nrun = "sh {recipe}/slow.sh {file}"',
                    files={"slow.sh": script})
    (workspace / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(workspace / "tmp")}
    proc = subprocess.Popen([sys.executable, "-m", "overnight.cli.main", "run", str(folder), "--yes", "-q"],
                            cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_file = folder / "metric.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert len(tagged(proc.pid)) >= 2  # the shell, its sleep and the one that left the session
    proc.kill()
    proc.wait(10)
    assert left_behind(proc.pid) == []


# Overnight dies while one of its commands is still starting: forked into its own session, its
# descriptors closed, not yet running with its tag, and held off the CPU a while (a busy machine).
STARTING = """
import os, signal, sys, time
from overnight.core import process
process.run("true", cwd=".", seconds=10)  # the watchdog is up
me = os.getpid()
child = os.fork()
if child == 0:
    os.setsid()
    os.closerange(3, 65536)  # as Popen does just before its exec
    time.sleep(1.5)
    os.execve("/bin/sleep", ["sleep", "333"], {**os.environ, process.TAG: f"{me}-99"})
open("child.pid", "w").write(str(child))
os.kill(me, signal.SIGKILL)
"""


def test_a_command_still_starting_when_overnight_dies_is_killed_once_it_runs(workspace):
    proc = subprocess.run([sys.executable, "-c", STARTING], cwd=workspace, timeout=30)
    assert proc.returncode == -9
    child = int((workspace / "child.pid").read_text())
    deadline = time.monotonic() + 15
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_a_finished_measurement_leaves_no_process_behind(workspace):
    from overnight.core import process

    done = process.run("setsid sleep 333 & (sleep 334 &); echo 5", cwd=workspace, seconds=10, shell=True)
    assert done.returncode == 0 and done.stdout.strip() == "5"
    assert tagged(os.getpid()) == []


def test_output_is_kept_head_and_tail_within_a_cap(workspace):
    from overnight.core import process

    done = process.run("echo first; yes | head -c 30000000; echo; echo last", cwd=workspace, seconds=30, shell=True)
    assert done.returncode == 0
    assert done.output.startswith("first\n") and done.output.rstrip().endswith("last")
    assert "bytes of output not kept" in done.output
    assert len(done.output) <= process.CAP + 200


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("point", APPLY_POINTS)
def test_an_apply_killed_half_way_is_finished_or_rolled_back(workspace, point):
    big = [("y" * 2_000_000) + "\n", ("z" * 3_000_000) + "\n"]
    folder = recipe(workspace / "r", text="a" * 1_000_000 + "\n", proposals=big)
    (workspace / "tmp").mkdir()
    assert overnight(workspace, "run", folder, "--yes", "-q").returncode == 0
    user_file = folder / "doc.txt"
    old, new = user_file.read_bytes(), big[1].encode()

    killed = overnight(workspace, "apply", "1:2", kill_at=point)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert user_file.read_bytes() in (old, new)  # never partial
    killed_left_a_temporary = any(p.name.startswith(TMP_MARK) for p in folder.iterdir())
    for bak in (workspace / ".overnight" / "backups").glob("*.bak"):
        assert bak.read_bytes() == old  # every backup whole

    status = overnight(workspace, "status")
    assert status.returncode == 0 and no_traceback(status.stdout + status.stderr)
    assert [p for p in folder.iterdir() if p.name.startswith(TMP_MARK)] == []
    assert [p for p in (workspace / ".overnight" / "backups").iterdir() if p.name.startswith(TMP_MARK)] == []
    if point == "apply.written":
        assert killed_left_a_temporary  # the kill came with the new content beside the file
    if point == "apply.replaced":
        assert "was finished" in status.stderr
    else:
        assert "rolled back" in status.stderr

    # The next plain apply is not refused for overnight's own write.
    again = overnight(workspace, "apply", "1:1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert user_file.read_bytes() == big[0].encode()
    assert rows(workspace / ".overnight" / "overnight.db", "select count(*) n from applies where state = 'begun'")[0]["n"] == 0


def test_a_diff_past_the_size_limit_is_one_summary_line(workspace):
    from overnight.core.record import bounded_diff

    big_old, big_new = "a\n" * 400_000, "b\n" * 400_000
    started = time.monotonic()
    line = bounded_diff(None, big_old, big_new, limit=1_000_000)  # the surface is not even asked
    assert time.monotonic() - started < 1
    assert line == "(no diff: 800,000 and 800,000 characters, past the limit of 1,000,000; they differ)\n"


def test_a_reader_waits_for_a_store_being_created(workspace):
    import threading

    from overnight.core.store import Store

    path = workspace / ".overnight" / "overnight.db"
    path.parent.mkdir()
    sqlite3.connect(path).close()  # the file exists, its tables not yet: the first second of a store
    writer = threading.Timer(0.5, lambda: Store(path).close())
    writer.start()
    reader = Store(path, readonly=True)
    try:
        assert reader.runs() == []
    finally:
        reader.close()
        writer.join()


def test_two_processes_creating_a_store_at_once_both_succeed(workspace):
    path = workspace / "s.db"
    code = f"from overnight.core.store import Store; Store({str(path)!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err


def test_a_killed_run_shows_as_died_with_the_command_that_resumes_it(workspace):
    folder = recipe(workspace / "r", proposals=VIEWS[:3], name="tagline")  # the folder, not the name, is what runs it
    (workspace / "tmp").mkdir()
    assert overnight(workspace, "run", folder, "--yes", "-q", kill_at="experiment.proposed").returncode == -9
    status = overnight(workspace, "status")
    assert "died" in status.stdout and "resume with: overnight run r --resume" in status.stdout, status.stdout
    log = overnight(workspace, "log")
    assert "(died (resume with: overnight run r --resume))" in log.stdout, log.stdout
    assert overnight(workspace, "run", folder, "--resume", "--yes", "-q").returncode == 0
    assert "died" not in overnight(workspace, "status").stdout
