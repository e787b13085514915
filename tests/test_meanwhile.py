"""Between two measurements: what a command's thread does while the command runs (the next work
folder, the experiment's diff), folders made ahead that are fresh, private and never outlive the
run, and leftovers of a command found by looking at the few pids given out since it started."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from overnight.core import process
from overnight.core.contracts import MeasureRequest
from overnight.core.errors import OvernightError
from overnight.core.executor import LocalExecutor, sweeper
from overnight.core.measure import once
from overnight.core.recipe import load
from overnight.core.runner import build, run
from overnight.core.store import Store
from tests.data.core.kit import recipe


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


# -- work done while a command runs ----------------------------------------------------------------


def test_work_queued_for_a_command_is_done_by_its_thread_while_the_command_runs(workspace):
    seen = []
    work = lambda: seen.append((threading.current_thread().name, time.monotonic()))  # noqa: E731

    started = time.monotonic()
    with process.meanwhile(work):
        done = process.run("sleep 0.3; echo ended", cwd=workspace, seconds=10, shell=True)

    assert done.stdout == "ended\n"
    assert [name for name, _ in seen] == [threading.current_thread().name]
    assert seen[0][1] - started < 0.3  # while it slept, not once it had ended
    with process.meanwhile(work):
        pass
    process.run("true", cwd=workspace, seconds=10, shell=True)
    assert len(seen) == 1  # done once, and nothing is left queued for a later command


def test_work_left_when_the_command_ended_is_not_done_and_its_time_is_not_the_commands(workspace):
    done_work = []

    def slow():
        time.sleep(0.4)
        done_work.append("slow")

    with process.meanwhile(slow, lambda: done_work.append("after")):
        done = process.run("sleep 0.1", cwd=workspace, seconds=10, shell=True)

    assert done.returncode == 0
    assert done_work == ["slow"]  # the command had ended: the rest waits for whoever queued it
    assert done.seconds < 0.4  # counted to the moment it was last seen running, never with overnight's own work

    with process.meanwhile(slow):
        process.run("sleep 0.1", cwd=workspace, seconds=10, shell=True)
    assert done_work == ["slow"]  # work that outlasted the last command is not done during the next one
    with process.meanwhile(slow):
        process.run("sleep 0.1", cwd=workspace, seconds=10, shell=True)
    assert done_work == ["slow", "slow"]  # nor for ever
    process.run("true", cwd=workspace, seconds=10, shell=True)  # the next command of this thread is left alone


def test_later_is_done_once_by_whoever_comes_first(workspace):
    calls = []
    later = process.Later(lambda x: calls.append(x) or x * 2, 21)
    with process.meanwhile(later):
        process.run("sleep 0.2", cwd=workspace, seconds=10, shell=True)
    assert later.result() == 42 and calls == [21]

    alone = process.Later(lambda: calls.append("alone") or "made by its caller")
    assert alone.result() == "made by its caller" and calls == [21, "alone"]

    failing = process.Later(lambda: 1 / 0)
    with process.meanwhile(failing):
        process.run("sleep 0.2", cwd=workspace, seconds=10, shell=True)
    with pytest.raises(ZeroDivisionError):  # raised where its result is asked for, not in the command's thread
        failing.result()


def test_each_experiments_diff_is_stored_as_the_surface_makes_it(workspace):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "sleep 0.1; wc -c < {file}"',
                    proposals=["hello world\n", "hi\n", "hello there, world\n"])
    setup = build(load(folder), Store(workspace / "o.db"))
    run(setup)
    rows = setup.store.experiments(1)
    assert [r["status"] for r in rows] == ["baseline", "keep", "discard", "keep"]
    for r in rows[1:]:
        assert r["diff"] == setup.surface.diff("hello\n", setup.store.candidate(r["candidate"]))
    setup.store.close()


def test_a_measurement_that_ignores_its_time_limit_is_a_timeout_once_the_backstop_passes(monkeypatch):
    from overnight.core import measure
    from overnight.core.contracts import Measurement, Outcome

    class Stuck:
        """An executor whose in-process metric ignores its limit."""

        def measure(self, view, request, guards=True):
            time.sleep(0.8)
            return Outcome(Measurement(1.0))

    monkeypatch.setattr(measure, "BACKSTOP", 0.1)
    started = time.monotonic()
    outcome = asyncio.run(asyncio.wait_for(once(Stuck(), "view", MeasureRequest(0.1)), 5))
    assert outcome.measurement.status == "timeout"
    assert time.monotonic() - started < 5


# -- work folders made ahead -----------------------------------------------------------------------


def _executor(workspace: Path, run_: str, **files) -> LocalExecutor:
    folder = recipe(workspace / "r", metric=f'kind = "command"\nrun = {run_!r}', files=files)
    setup = build(load(folder), Store(workspace / "o.db"), with_agent=False)
    return setup.executor


def test_the_next_work_folder_is_made_while_a_command_runs_fresh_private_and_used_once(workspace):
    # Long enough for the work done meanwhile on a slow machine: work that outlasts its command is
    # not done during the next one.
    executor = _executor(workspace, "pwd >&2; ls -A >&2; sleep 0.2; wc -c < {file}", **{"data.txt": "the person's data\n"})

    first = executor.measure("hello, world\n", MeasureRequest(10)).measurement
    assert first.value == 13
    [ahead] = executor.ahead
    recipe_folder = workspace / "r"
    assert sorted(os.listdir(ahead)) == sorted(os.listdir(recipe_folder))
    assert (ahead / "data.txt").read_text() == "the person's data\n"
    assert (ahead / "doc.txt").read_text() == "hello\n"  # a copy of the recipe folder, not yet a candidate
    assert os.stat(ahead.parent).st_mode & 0o077 == 0  # in a folder only this user can enter

    second = executor.measure("hi\n", MeasureRequest(10)).measurement
    assert second.value == 3
    assert str(ahead) in second.trace.splitlines()  # the second measurement ran in it
    assert ahead not in executor.ahead and len(executor.ahead) == 1  # used once; the next one is made
    sweeper.drain()
    assert not ahead.exists()


def test_a_folder_made_ahead_is_never_used_once_the_recipe_folder_changed(workspace):
    folder = workspace / "r"
    executor = _executor(workspace, f"echo changed >> {folder}/data.txt; sleep 0.1; wc -c < {{file}}", **{"data.txt": "x\n"})
    dropped = []
    forget = executor.forget_ahead
    executor.forget_ahead = lambda: dropped.extend(executor.ahead) or forget()

    with pytest.raises(OvernightError, match="data.txt"):
        asyncio.run(once(executor, "hello\n", MeasureRequest(10)))

    assert len(dropped) == 1 and executor.ahead == []  # made while the command ran, from a folder it changed
    sweeper.drain()
    assert not dropped[0].exists()


def test_folders_made_ahead_and_never_used_are_removed_at_exit(workspace):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "sleep 0.2; wc -c < {file}"')
    root = workspace / "work"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from overnight.core.contracts import MeasureRequest
        from overnight.core.executor import LocalExecutor
        from overnight.core.recipe import load
        from overnight.core.runner import build
        from overnight.core.store import Store

        setup = build(load(Path({str(folder)!r})), Store(Path({str(workspace / "o.db")!r})), with_agent=False)
        executor = LocalExecutor(setup.surface, setup.objective, root=Path({str(root)!r}))
        print(executor.measure("hello, world\\n", MeasureRequest(10)).measurement.value)
        print(*executor.ahead)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "13.0"
    ahead = Path(out[1])
    assert ahead.parent == root and ahead.name.startswith("exp-")
    assert not ahead.exists() and list(root.iterdir()) == []


# -- leftovers -------------------------------------------------------------------------------------


def test_a_daemon_that_left_the_group_is_killed_by_looking_at_the_pids_given_out_since(workspace, monkeypatch):
    listed = []
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(path) or listdir(path))
    pidfile = workspace / "daemon.pid"

    done = process.run(f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 333' & sleep 0.2; echo started",
                       cwd=workspace, seconds=10, shell=True)

    assert done.stdout.strip() == "started"
    assert "/proc" not in listed  # a few pids were given out since it started: each was looked at
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(pid)


def test_when_many_pids_were_given_out_every_process_is_listed_and_the_daemon_still_killed(workspace, monkeypatch):
    monkeypatch.setattr(process, "PROBE_MOST", 0)
    pidfile = workspace / "daemon.pid"

    process.run(f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 333' & sleep 0.2", cwd=workspace, seconds=10, shell=True)

    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(pid)


def test_pids_given_out_around_the_wrap_are_both_ends(monkeypatch):
    monkeypatch.setattr(process, "_read_int", {"/proc/sys/kernel/ns_last_pid": 120}.__getitem__)
    monkeypatch.setattr(process, "_pid_max", lambda: 4_194_304)
    assert process._pids_since(4_194_300, 0.1) == [range(4_194_300, 4_194_304), range(1, 121)]
    assert process._pids_since(100, 0.1) == [range(100, 121)]


def test_a_thread_of_overnight_itself_is_never_killed_by_its_number(workspace):
    # An overnight started by a command of another carries that one's tag: its threads, looked at by
    # their numbers, show the same environment, and must not be taken for what its command left.
    script = textwrap.dedent("""
        import threading
        from overnight.core import process
        ready, stop = threading.Event(), threading.Event()
        thread = threading.Thread(target=lambda: ready.set() or stop.wait(10))
        thread.start()
        ready.wait()
        print(process._kill_where(b"OVERNIGHT_PROCESS_TAG=outer-1", since=thread.native_id - 1, seconds=0.1))
        stop.set()
    """)
    env = {**os.environ, process.TAG: "outer-1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n")


# -- the check after each measurement ----------------------------------------------------------------


def test_a_new_recipe_folder_is_read_whole_only_while_its_times_could_hide_a_change(tmp_path, monkeypatch):
    from overnight.core import paths

    monkeypatch.setattr(paths, "RACY_NS", 200_000_000)
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "doc.txt").write_text("hello\n")
    before = paths.Fingerprint.of(folder)
    assert all(content is not None for _, _, content, _ in before.quick)  # just written: names and content

    time.sleep(0.3)
    before.check()
    assert all(content is None for _, _, content, _ in before.quick)  # seen as it was, too old to hide a change

    (folder / "doc.txt").write_text("HELLO\n")
    with pytest.raises(OvernightError, match="doc.txt"):
        before.check()
