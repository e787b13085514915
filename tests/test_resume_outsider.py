"""What an outsider found wrong with resuming: a dead run every command must call dead, the run
`--resume` must find, two resumes at once, a store edited by hand, and counts that must agree."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys

from tests.data.core.kit import experiments, no_traceback, recipe, rows
from tests.test_resume import recorded, slow_recipe, start, wait_for


def store(workspace):
    return workspace / ".overnight" / "overnight.db"


def edit(db, sql: str, args=()) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, args)
    conn.close()


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def live_python():
    """A live process whose command line names python, as a run's would."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def finished_run(workspace, cli, budget: str = "experiments = 1"):
    folder = recipe(workspace / "r", proposals=["hello world\n", "hello there world\n"], budget=budget)
    assert cli("run", folder, "--yes").exit_code == 0
    return folder, store(workspace)


def test_a_run_whose_pid_another_program_took_is_dead_to_resume_too(workspace, cli):
    folder, db = finished_run(workspace, cli)
    other = subprocess.Popen(["sleep", "60"])  # after a reboot, the dead run's pid is another program's
    try:
        edit(db, "update runs set status = 'running', pid = ?, ended_at = null", [other.pid])
        assert "died (resume with: overnight run r --resume)" in cli("log").output
        assert f"its process ({other.pid}) is gone" in cli("stop").output
        resumed = cli("run", folder, "--resume", "--yes")
        assert resumed.exit_code == 0 and "still running" not in resumed.output, resumed.output
        assert rows(db, "select status, pid from runs") == [{"status": "finished", "pid": os.getpid()}]
    finally:
        other.kill()
        other.wait()


def test_a_paused_run_killed_with_sigkill_shows_as_died_and_resumes(workspace, cli):
    folder = slow_recipe(workspace / "r", 6, 0.2)
    db = store(workspace)
    proc = start(workspace, folder)
    wait_for(lambda: recorded(db) >= 1)
    assert cli("pause").exit_code == 0
    wait_for(lambda: rows(db, "select status from runs")[0]["status"] == "paused")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    assert "died" in cli("status").output
    assert json.loads(cli("status", "--json").output)[0]["status"] == "died"
    advice = cli("resume")
    assert advice.exit_code == 1 and "continue it with `overnight run r --resume`" in advice.output
    (folder / "slow").unlink()
    resumed = cli("run", folder, "--resume", "--yes")
    assert resumed.exit_code == 0, resumed.output
    run = rows(db, "select * from runs")[0]
    assert run["status"] == "finished" and run["control"] is None and run["experiments"] == 6


def test_resume_of_a_live_paused_run_says_to_use_overnight_resume(workspace, cli):
    folder, db = finished_run(workspace, cli)
    other = live_python()
    try:
        edit(db, "update runs set status = 'paused', control = 'pause', pid = ?", [other.pid])
        result = cli("run", folder, "--resume", "--yes")
        assert result.exit_code == 1 and no_traceback(result.output)
        assert result.output.endswith(f"Error: Run 1 of recipe 'r' is paused (process {other.pid}); "
                                      "continue it with `overnight resume 1`.\n"), result.output
        assert rows(db, "select status, pid from runs") == [{"status": "paused", "pid": other.pid}]
    finally:
        other.kill()
        other.wait()


def test_resume_continues_the_newest_unfinished_run_even_when_a_later_run_finished(workspace, cli):
    folder, db = finished_run(workspace, cli)
    edit(db, "update runs set status = 'running', pid = ?, ended_at = null", [dead_pid()])  # run 1 died
    assert cli("run", folder, "--yes").exit_code == 0  # run 2 finished after it
    assert "died (resume with: overnight run r --resume)" in cli("log", "1").output
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("experiments = 1", "experiments = 2"))

    resumed = cli("run", folder, "--resume", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "Run 1 of 'r' finished" in resumed.output
    assert [(r["id"], r["status"], r["experiments"]) for r in rows(db, "select * from runs order by id")] == \
        [(1, "finished", 2), (2, "finished", 1)]


def test_of_two_resumes_at_once_the_loser_says_so_and_writes_nothing(workspace, cli, monkeypatch):
    """The other `--resume` claims the run between this one's look at it and its claim."""
    folder, db = finished_run(workspace, cli)
    edit(db, "update runs set status = 'running', pid = ?, ended_at = null", [dead_pid()])
    before = rows(db, "select * from runs")[0]
    other = live_python()
    from overnight.core import runner

    looked = runner.process_gone

    def then_the_other_claims(run):
        gone = looked(run)
        edit(db, "update runs set pid = ? where id = 1", [other.pid])
        return gone

    monkeypatch.setattr(runner, "process_gone", then_the_other_claims)
    try:
        result = cli("run", folder, "--resume", "--yes")
        assert result.exit_code == 1 and no_traceback(result.output)
        assert result.output.endswith(f"Error: Run 1 of recipe 'r' is being resumed by process {other.pid}.\n"), result.output
        assert rows(db, "select * from runs")[0] == {**before, "pid": other.pid}
        assert len(experiments(db)) == 2
    finally:
        other.kill()
        other.wait()


def test_a_run_whose_baseline_was_deleted_is_refused_not_measured_anew(workspace, cli):
    folder, db = finished_run(workspace, cli)
    edit(db, "update runs set status = 'stopped'")
    edit(db, "delete from experiments where seq = 0")
    before, calls = rows(db, "select * from runs")[0], (folder / "calls.log").read_text()

    result = cli("run", folder, "--resume", "--yes")
    assert result.exit_code == 1 and no_traceback(result.output)
    assert result.output.endswith(f"Error: Run 1 in {db} has experiments but no baseline (seq 0), so it cannot be "
                                  "resumed; start a new run.\n"), result.output
    assert rows(db, "select * from runs")[0] == before
    assert [e["seq"] for e in experiments(db)] == [1]
    assert (folder / "calls.log").read_text() == calls  # nothing measured


def test_apply_takes_the_best_of_a_run_whose_baseline_was_measured_after_an_edit(workspace, cli):
    """Killed before its baseline was stored; the person edits the file; the resumed run measures
    its baseline from the edited file, and applying its best compares with that file."""
    folder = recipe(workspace / "r", text="hello\n", proposals=["hello world\n"])
    env = {**os.environ, "OVERNIGHT_KILL_AT": "baseline.measured"}
    env.pop("OVERNIGHT_DB", None)
    killed = subprocess.run([sys.executable, "-m", "overnight.cli.main", "run", str(folder), "--yes"], cwd=workspace,
                            env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    assert killed.returncode == -signal.SIGKILL and experiments(store(workspace)) == []
    (folder / "doc.txt").write_text("hi there\n")

    assert cli("run", folder, "--resume", "--yes").exit_code == 0
    best = rows(store(workspace), "select * from runs")[0]
    assert best["source_fingerprint"] == hashlib.sha256(b"hi there\n").hexdigest()
    applied = cli("apply", "1:1")
    assert applied.exit_code == 0, applied.output
    assert (folder / "doc.txt").read_text() == "hello world\n"


def test_the_summary_status_and_store_count_the_same_experiments_after_an_interruption(workspace, cli):
    folder = slow_recipe(workspace / "r", 6, 0.05)
    db = store(workspace)
    started = folder / "started.log"
    proc = start(workspace, folder)
    wait_for(lambda: recorded(db) >= 2)
    (folder / "slow").write_text("30")
    wait_for(lambda: len(started.read_text().splitlines()) > 1 + recorded(db))  # a measurement under way
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 143
    (folder / "slow").unlink()

    resumed = cli("run", folder, "--resume", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert [e["status"] for e in experiments(db)].count("interrupted") == 1
    kept = re.search(r"Kept \d+ of (\d+) experiments \(([^)]*)\)\.", resumed.output)
    assert kept and "interrupted" not in kept.group(2), resumed.output
    assert "Not counted: 1 interrupted experiment." in resumed.output
    shown = json.loads(cli("status", "--json").output)[0]["experiments"]
    assert int(kept.group(1)) == shown == rows(db, "select experiments from runs")[0]["experiments"] == 6


def test_a_copy_of_a_recipe_under_the_same_name_does_not_resume_the_originals_run(workspace, cli):
    """`recipes use` copies a recipe with its name: --resume from the copy would finish the original's
    run in another folder, and apply would then write the original's file."""
    folder, db = finished_run(workspace, cli)
    copy = recipe(workspace / "copy", proposals=["hello world\n"], budget="experiments = 1", name="r")
    edit(db, "update runs set status = 'stopped'")

    refused = cli("run", copy, "--resume", "--yes")

    assert refused.exit_code == 1 and no_traceback(refused.output)
    assert (f"Run 1 of recipe 'r' was started from {folder}, not from {copy}: resume it there "
            f"(overnight run {folder} --resume), or start a new run here without --resume.") in refused.output
    assert rows(db, "select status from runs") == [{"status": "stopped"}]
    assert cli("run", folder, "--resume", "--yes").exit_code == 0
    assert rows(db, "select status from runs") == [{"status": "finished"}]


def test_a_recipe_whose_metric_changed_since_its_run_began_is_not_resumed(workspace, cli):
    """Scores measured before and after a new goal or metric would be compared as one metric's."""
    folder, db = finished_run(workspace, cli, budget="experiments = 1")
    edit(db, "update runs set status = 'stopped'")
    toml = folder / "recipe.toml"
    original = toml.read_text()
    toml.write_text(original.replace("[metric]\n", '[metric]\ngoal = "minimize"\n'))

    refused = cli("run", folder, "--resume", "--yes")

    assert refused.exit_code == 1 and no_traceback(refused.output)
    assert (f"[metric] of {toml} changed since run 1 began, so its scores would not compare with those measured now: "
            f"start a new run without --resume, or put those sections back as they were to resume it.") in refused.output
    assert rows(db, "select status from runs") == [{"status": "stopped"}]
    toml.write_text(original.replace("experiments = 1", "experiments = 2"))  # more budget: the same scores
    resumed = cli("run", folder, "--resume", "--yes")
    assert resumed.exit_code == 0, resumed.output
