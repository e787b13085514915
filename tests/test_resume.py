"""Stopping and resuming a real `overnight run` process: SIGKILL halfway loses nothing and
repeats nothing; Ctrl-C and SIGTERM stop cleanly and record the experiment in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.data.core.kit import alive, experiments, lines_recorded, no_traceback, recipe, rows

SLOWABLE = '''
echo $$ > "$OVERNIGHT_RECIPE_DIR/metric.pid"
echo started >> "$OVERNIGHT_RECIPE_DIR/started.log"
if [ -f "$OVERNIGHT_RECIPE_DIR/slow" ]; then sleep "$(cat "$OVERNIGHT_RECIPE_DIR/slow")"; fi
wc -c < "$1"
'''


def slow_recipe(folder: Path, n: int, seconds: float, budget: str = "") -> Path:
    recipe(folder, proposals=[("x" * i) + "\n" for i in range(10, 10 + n)],
           metric='kind = "command"\nrun = "sh {recipe}/slowable.sh {file}"',
           budget=budget, files={"slowable.sh": SLOWABLE})
    (folder / "slow").write_text(str(seconds))
    return folder


def start(workspace: Path, *args) -> subprocess.Popen:
    """`overnight run ...` as a process of its own, its output in files."""
    out = (workspace / "stdout.txt").open("w")
    err = (workspace / "stderr.txt").open("w")
    return subprocess.Popen([sys.executable, "-m", "overnight.cli.main", "run", *map(str, args), "--yes"],
                            cwd=workspace, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def recorded(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return rows(db, "select count(*) n from experiments where seq > 0")[0]["n"]
    except Exception:  # the tables may not be there yet
        return 0


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def finish(workspace: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overnight.cli.main", "run", *map(str, args), "--yes"],
                          cwd=workspace, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("budget, proposals, expected",
                         [("", 20, 20), ("experiments = 12", 20, 12), ("parallel = 3", 20, 20)])
def test_sigkill_halfway_then_resume_records_every_proposal_once(workspace, budget, proposals, expected):
    folder = slow_recipe(workspace / "r", proposals, 0.15, budget)
    db = workspace / ".overnight" / "overnight.db"
    proc = start(workspace, folder)
    wait_for(lambda: recorded(db) >= expected // 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    halfway = recorded(db)
    assert 0 < halfway < expected
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "running"  # nobody could tell it otherwise

    (folder / "slow").unlink()
    done = finish(workspace, folder, "--resume")
    assert done.returncode == 0, done.stderr
    assert no_traceback(done.stdout + done.stderr)

    assert sorted(lines_recorded(db)) == list(range(1, expected + 1))
    assert len(rows(db, "select * from runs")) == 1
    exps = experiments(db)
    if "parallel" not in budget:  # in parallel, an experiment in flight at the kill leaves a gap in seq
        assert lines_recorded(db) == list(range(1, expected + 1))
        assert [e["seq"] for e in exps] == list(range(0, expected + 1))
    assert sum(e["status"] == "baseline" for e in exps) == 1
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "finished" and run["experiments"] == expected
    if "experiments" in budget:
        assert run["stop_reason"] == f"experiment budget reached ({expected})"
    else:
        assert run["stop_reason"] == "the agent has no more proposals"
    assert f"of {expected} experiments" in done.stdout


@pytest.mark.parametrize("sig, name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_a_stop_signal_records_the_experiment_in_flight_and_resume_continues(workspace, sig, name):
    folder = slow_recipe(workspace / "r", 6, 0.05)
    db = workspace / ".overnight" / "overnight.db"
    started = folder / "started.log"
    proc = start(workspace, folder)
    wait_for(lambda: recorded(db) >= 2)
    (folder / "slow").write_text("30")
    # Wait until a measurement is under way (it has said so, and it is not recorded yet).
    wait_for(lambda: len(started.read_text().splitlines()) > 1 + recorded(db))
    metric_pid = int((folder / "metric.pid").read_text())
    sent = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(20)
    assert time.monotonic() - sent < 10  # it did not wait for the 30 s measurement
    out, err = (workspace / "stdout.txt").read_text(), (workspace / "stderr.txt").read_text()
    assert code == {"SIGTERM": 143, "Ctrl-C": 130}[name], err
    assert no_traceback(out + err), out + err
    assert f"stopped: interrupted by {name}" in out
    assert f"Resume with: overnight run {folder} --resume" in out

    wait_for(lambda: not alive(metric_pid), 5)
    exps = experiments(db)
    last = exps[-1]
    assert last["status"] == "interrupted" and last["reason"] == f"interrupted by {name}"
    assert sum(e["status"] == "interrupted" for e in exps) == 1
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "stopped" and run["stop_reason"] == f"interrupted by {name}"
    assert run["experiments"] == len(exps) - 2  # the interrupted one is not counted

    (folder / "slow").unlink()
    done = finish(workspace, folder, "--resume")
    assert done.returncode == 0, done.stderr
    assert no_traceback(done.stdout + done.stderr)
    # Every proposal measured exactly once; the one cut short was proposed again.
    assert lines_recorded(db, measured_only=True) == list(range(1, 7))
    interrupted_line = [l for l, e in zip(lines_recorded(db), experiments(db)[1:]) if e["status"] == "interrupted"]
    assert len(interrupted_line) == 1
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "finished" and run["experiments"] == 6


def test_a_stop_during_the_confirmation_exits_as_a_stop_and_resume_confirms(workspace):
    folder = slow_recipe(workspace / "r", 2, 0.3)
    db = workspace / ".overnight" / "overnight.db"
    started = folder / "started.log"
    proc = start(workspace, folder)
    wait_for(lambda: started.exists() and len(started.read_text().splitlines()) > 3)  # baseline, 2 experiments, then confirming
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 143, (workspace / "stderr.txt").read_text()
    assert "Resume with: overnight run" in (workspace / "stdout.txt").read_text()
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "stopped" and run["stop_reason"] == "interrupted by SIGTERM"

    (folder / "slow").write_text("0")
    done = finish(workspace, folder, "--resume")
    assert done.returncode == 0, done.stderr
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "finished" and run["confirmed_best"] is not None
    assert lines_recorded(db, measured_only=True) == [1, 2]


def test_resume_refuses_a_run_that_is_still_going(workspace):
    folder = slow_recipe(workspace / "r", 4, 0.05)
    db = workspace / ".overnight" / "overnight.db"
    proc = start(workspace, folder)
    try:
        wait_for(lambda: recorded(db) >= 1)
        (folder / "slow").write_text("30")
        other = finish(workspace, folder, "--resume")
        assert other.returncode != 0
        assert f"is still running (process {proc.pid})" in other.stderr
        assert no_traceback(other.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_a_stop_while_measuring_the_baseline_leaves_a_run_to_resume(workspace):
    folder = slow_recipe(workspace / "r", 3, 30)
    db = workspace / ".overnight" / "overnight.db"
    started = folder / "started.log"
    proc = start(workspace, folder)
    wait_for(lambda: started.exists() and started.read_text().strip())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 143  # as a shell reports a command SIGTERM ended
    out, err = (workspace / "stdout.txt").read_text(), (workspace / "stderr.txt").read_text()
    assert no_traceback(out + err) and "stopped: interrupted by SIGTERM" in out
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "stopped" and run["stop_reason"] == "interrupted by SIGTERM"
    assert experiments(db) == []  # not a failed baseline: no baseline at all

    (folder / "slow").unlink()
    done = finish(workspace, folder, "--resume")
    assert done.returncode == 0, done.stderr
    assert [e["status"] for e in experiments(db)] == ["baseline", "keep", "keep", "keep"]


SIGNALS_AT_ONCE = '''
if [ ! -f "{marks}/signalled" ]; then
  touch "{marks}/signalled"
  kill -"$(cat "{marks}/signal")" "$(cat "{marks}/overnight.pid")"
  sleep 30
fi
wc -c < "$1"
'''


@pytest.mark.parametrize("sig, name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_a_stop_as_the_baseline_starts_before_the_loop_listens_leaves_a_run_to_resume(workspace, sig, name):
    """`overnight run` starts its baseline's command while the rest of the run is still being
    imported (core/ahead.py): a signal sent the moment that command starts is heard all the same."""
    folder, marks = workspace / "r", workspace / "marks"  # the marks outside the recipe folder, which stays as it was
    marks.mkdir()
    recipe(folder, proposals=[("x" * i) + "\n" for i in range(10, 13)],
           metric='kind = "command"\nrun = "sh {recipe}/signals.sh {file}"',
           files={"signals.sh": SIGNALS_AT_ONCE.replace("{marks}", str(marks))})
    (marks / "signal").write_text(signal.Signals(sig).name[3:])
    db = workspace / ".overnight" / "overnight.db"
    proc = start(workspace, folder)
    (marks / "overnight.pid").write_text(str(proc.pid))  # long before the baseline's command starts
    assert proc.wait(20) == {"SIGTERM": 143, "Ctrl-C": 130}[name]
    out, err = (workspace / "stdout.txt").read_text(), (workspace / "stderr.txt").read_text()
    assert no_traceback(out + err) and f"stopped: interrupted by {name}" in out, out + err
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "stopped" and run["stop_reason"] == f"interrupted by {name}"
    assert experiments(db) == []

    done = finish(workspace, folder, "--resume")
    assert done.returncode == 0, done.stderr
    assert [e["status"] for e in experiments(db)] == ["baseline", "keep", "keep", "keep"]


def test_a_stop_requested_through_the_store_ends_the_run_after_the_experiment_in_flight(workspace):
    folder = slow_recipe(workspace / "r", 8, 0.3)
    db = workspace / ".overnight" / "overnight.db"
    proc = start(workspace, folder)
    wait_for(lambda: recorded(db) >= 2)
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("update runs set control = 'stop'")
    conn.close()
    assert proc.wait(20) == 0
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "stopped" and run["stop_reason"] == "stopped on request"
    assert all(e["status"] != "interrupted" for e in experiments(db))
    assert 2 <= recorded(db) < 8

    (folder / "slow").unlink()
    done = finish(workspace, folder, "--resume")
    assert done.returncode == 0, done.stderr
    assert lines_recorded(db) == list(range(1, 9))
