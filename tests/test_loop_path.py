"""The loop's per-experiment path: no thread hop where none is needed, a work folder copied
cheaply but never linked to the person's files, one transaction per experiment, a recipe
folder watched by stat, and commands whose leftovers are found among the newest processes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from overnight.core.contracts import Measurement, Metric
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.paths import Fingerprint
from overnight.core.plugins import Registry
from overnight.core.recipe import load
from overnight.core.runner import build, run
from overnight.core.store import Store
from overnight.core.workfolder import IGNORE, Template
from overnight.plugins.scripted import ScriptedAgent
from tests.data.core.kit import recipe

THREADS: dict[str, set[str]] = {"metric": set(), "agent": set()}
FOLDERS: list[tuple[str, list[str]]] = []  # each measurement's work folder, and what it held then


class InstantLength(Metric):
    """The length of the file, in-process, declared instant."""

    name = "instant-length"
    summary = "The number of characters of the file (instant)."
    options = {}
    reads = "file"
    instant = True

    def measure(self, artifact, folder, request):
        THREADS["metric"].add(threading.current_thread().name)
        FOLDERS.append((str(folder), sorted(os.listdir(folder))))
        return Measurement(float(len(Path(artifact).read_text())))


class SlowLength(InstantLength):
    """The same, not declared instant: measured in a worker thread."""

    name = "slow-length"
    instant = False


class Littering(InstantLength):
    """The same, leaving a file of its own in the work folder."""

    name = "littering-length"

    def measure(self, artifact, folder, request):
        found = super().measure(artifact, folder, request)
        (Path(folder) / "left.txt").write_text("a leftover")
        return found


@hookimpl
def overnight_register_metrics(register):
    register(InstantLength)
    register(SlowLength)
    register(Littering)


def _run(workspace: Path, kind: str, monkeypatch) -> None:
    for seen in THREADS.values():
        seen.clear()
    FOLDERS.clear()
    propose = ScriptedAgent.propose
    monkeypatch.setattr(ScriptedAgent, "propose",
                        lambda self, context: THREADS["agent"].add(threading.current_thread().name) or propose(self, context))
    folder = recipe(workspace / kind, metric=f'kind = "{kind}"', proposals=["hello world\n", "hi\n"])
    store = Store(workspace / "o.db")
    summary = run(build(load(folder, Registry().load(modules=[__name__])), store))
    store.close()
    assert (summary.baseline, summary.best, summary.kept) == (6, 12, 1)


def test_an_instant_metric_and_the_scripted_agent_run_in_the_event_loop_thread(workspace, monkeypatch):
    _run(workspace, "instant-length", monkeypatch)
    assert THREADS == {"metric": {"MainThread"}, "agent": {"MainThread"}}


def test_a_metric_not_declared_instant_is_measured_in_a_worker_thread(workspace, monkeypatch):
    _run(workspace, "slow-length", monkeypatch)
    assert "MainThread" not in THREADS["metric"] and THREADS["metric"]
    assert THREADS["agent"] == {"MainThread"}  # the scripted agent is instant whatever the metric


def test_an_instant_metric_that_left_its_work_folder_as_it_was_gets_it_again(workspace, monkeypatch):
    _run(workspace, "instant-length", monkeypatch)
    assert len(FOLDERS) == 5 and len({folder for folder, _ in FOLDERS}) == 1  # baseline, 2, confirmation of 2
    assert [held for _, held in FOLDERS] == [["doc.txt"]] * 5  # the candidate alone, each time


def test_a_work_folder_a_metric_wrote_into_is_never_used_again(workspace, monkeypatch):
    _run(workspace, "littering-length", monkeypatch)
    assert len({folder for folder, _ in FOLDERS}) == len(FOLDERS) == 5
    assert [held for _, held in FOLDERS] == [["doc.txt"]] * 5  # no leftover of the one before


# -- the work folder ------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict:
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top) / name
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[path.relative_to(root).as_posix()] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[path.relative_to(root).as_posix()] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            else:
                found[path.relative_to(root).as_posix()] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns,
                                                            path.read_bytes(), st.st_nlink)
    return found


def test_a_work_folder_is_what_a_full_copy_would_be(tmp_path):
    src = tmp_path / "recipe"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "doc.txt").write_text("hello\n" * 1000)
    (src / "run.sh").write_text("#!/bin/sh\necho 1\n")
    os.chmod(src / "run.sh", 0o750)
    (src / "sub" / "data.csv").write_text("x,y\n1,2\n")
    (src / "sub" / "deeper" / "empty").write_text("")
    (src / "link").symlink_to("doc.txt")
    (src / "elsewhere").symlink_to(tmp_path / "nowhere")
    for ignored in (".git", "__pycache__", ".overnight"):
        (src / ignored).mkdir()
        (src / ignored / "x").write_text("left out")
    (src / "sub" / "mod.pyc").write_bytes(b"left out")
    (src / "locked").mkdir()
    (src / "locked" / "f").write_text("inside a read-only folder")
    os.chmod(src / "locked", 0o555)

    Template(src).copy(tmp_path / "work")
    shutil.copytree(src, tmp_path / "copied", symlinks=True, ignore=IGNORE)

    assert _snapshot(tmp_path / "work") == _snapshot(tmp_path / "copied")
    assert all(entry[-1] == 1 for entry in _snapshot(tmp_path / "work").values() if entry[0] == "file")  # no links


def test_a_metric_that_writes_its_work_copy_leaves_the_persons_files_as_they_were(cli, workspace):
    # The work copy of data.txt is a file of its own (one link), a copy of the person's, times and mode kept.
    check = ('test "$(stat -c %h data.txt)" = 1 && test -x tool.sh && test data.txt -ot {file} '
             '&& echo appended >> data.txt && wc -c < {file}')
    folder = recipe(workspace / "w", metric=f'kind = "command"\nrun = {check!r}', proposals=["hello world\n"],
                    files={"data.txt": "the person's data\n", "tool.sh": "#!/bin/sh\n"})
    os.chmod(folder / "tool.sh", 0o755)
    hour_ago = time.time() - 3600
    os.utime(folder / "data.txt", (hour_ago, hour_ago))
    before = (folder / "data.txt").stat()

    ran = cli("run", folder, "--yes")

    assert ran.exit_code == 0, ran.output
    assert "Kept 1 of 1 experiments" in ran.output
    after = (folder / "data.txt").stat()
    assert (folder / "data.txt").read_text() == "the person's data\n"
    assert (after.st_mtime_ns, after.st_ctime_ns, after.st_nlink) == (before.st_mtime_ns, before.st_ctime_ns, 1)



@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_a_surface_that_is_a_link_in_the_recipe_folder_is_never_written_through(cli, workspace, how):
    # The person keeps the file elsewhere and links it into the recipe folder; the work copy of the
    # link must become the candidate's own file, not a way to write the person's.
    own = workspace / "mine" / "doc.txt"
    own.parent.mkdir()
    own.write_text("hello\n")
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "wc -c < {file}"', proposals=["hello world\n"])
    (folder / "doc.txt").unlink()
    (folder / "doc.txt").symlink_to(own if how == "absolute" else Path("..") / "mine" / "doc.txt")

    ran = cli("run", folder, "--yes")

    assert ran.exit_code == 0, ran.output
    assert "Kept 1 of 1 experiments" in ran.output
    assert own.read_text() == "hello\n"
    assert (folder / "doc.txt").is_symlink() and not list((workspace / ".overnight").glob("backups/*"))


def test_a_surface_in_a_linked_folder_of_the_recipe_is_never_written_through(cli, workspace):
    own = workspace / "mine"
    own.mkdir()
    (own / "doc.txt").write_text("hello\n")
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "wc -c < {file}"', proposals=["hello world\n"],
                    surface='kind = "text"\npath = "texts/doc.txt"')
    (folder / "texts").symlink_to(own)

    ran = cli("run", folder, "--yes")

    assert ran.exit_code == 0, ran.output
    assert "Kept 1 of 1 experiments" in ran.output
    assert (own / "doc.txt").read_text() == "hello\n" and sorted(os.listdir(own)) == ["doc.txt"]

# -- the recipe folder, watched by stat -------------------------------------------------------------


def _old_folder(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "note.txt").write_text("hello\n")
    (root / "data" / "rows.csv").write_text("a,b\n")
    hour_ago = time.time() - 3600
    for path in (root / "note.txt", root / "data" / "rows.csv", root / "data", root):
        os.utime(path, (hour_ago, hour_ago))
    return root


def test_the_cheap_look_sees_a_new_file_in_a_subfolder_and_a_rewrite_with_its_time_put_back(tmp_path):
    folder = _old_folder(tmp_path / "r")
    before = Fingerprint.of(folder)
    before.check()

    (folder / "data" / "new.csv").write_text("x\n")
    with pytest.raises(OvernightError) as stopped:
        before.check()
    assert f"A measurement changed {folder / 'data'} (and 1 more)" in stopped.value.message

    folder = _old_folder(tmp_path / "s")
    before = Fingerprint.of(folder)
    old = (folder / "note.txt").stat()
    (folder / "note.txt").write_text("HELLO\n")  # same size, and its times set back: its ctime moved
    os.utime(folder / "note.txt", ns=(old.st_atime_ns, old.st_mtime_ns))
    with pytest.raises(OvernightError) as stopped:
        before.check()
    assert f"A measurement changed {folder / 'note.txt'}" in stopped.value.message


def test_overnights_own_folder_appearing_moves_the_folders_times_but_changes_nothing(tmp_path):
    folder = _old_folder(tmp_path / "r")
    before = Fingerprint.of(folder)
    (folder / ".overnight").mkdir()
    (folder / ".overnight" / "overnight.db").write_text("the store")

    before.check()  # the folder's own times moved; walked again, nothing of the recipe changed
    root_now = os.lstat(folder)
    assert before.quick[0][1] == (root_now.st_mode, root_now.st_size, root_now.st_mtime_ns, root_now.st_ctime_ns,
                                  root_now.st_ino)  # and the cheap look starts from here
    (folder / "data" / "rows.csv").write_text("a,c\n")
    with pytest.raises(OvernightError):
        before.check()


# -- one transaction per experiment ------------------------------------------------------------------


def test_an_experiment_its_candidate_and_the_runs_row_are_stored_together_or_not_at_all(tmp_path):
    store = Store(tmp_path / "o.db")
    run_id = store.start_run(recipe="r", recipe_text="", config="{}", goal="maximize")

    def broken(exp_id):
        raise RuntimeError("killed between the experiment and the run's row")

    with pytest.raises(RuntimeError):
        store.commit_experiment(run_id, [], [], broken, view="a view\n", seq=1, candidate="d1", status="keep")
    assert store.experiments(run_id) == [] and store.candidate("d1") is None

    exp_id = store.commit_experiment(run_id, [], [], lambda i: {"best_experiment": i}, view="a view\n", seq=1,
                                     candidate="d1", status="keep")
    assert store.candidate("d1") == "a view\n" and store.run(run_id)["best_experiment"] == exp_id
    with store.transaction():
        with pytest.raises(ValueError):
            with store.transaction():  # a savepoint: undone alone
                store.put_candidate("d2", "inner")
                raise ValueError("inner")
        store.put_candidate("d3", "outer")
    assert (store.candidate("d2"), store.candidate("d3")) == (None, "outer")
    store.close()


RUN_PROBE = """
import sys
from overnight.core.recipe import load
from overnight.core.runner import build, run
from overnight.core.store import Store
store = Store(sys.argv[2])
summary = run(build(load(sys.argv[1]), store))
print(summary.kept, sorted(m for m in ("sqlite_utils", "numpy", "tomlkit", "xml.etree", "urllib.request") if m in sys.modules))
"""


def test_a_run_on_an_existing_store_imports_neither_sqlite_utils_nor_numpy_nor_tomlkit(workspace):
    """Nor what a workbook or a settings writer needs: a run reads settings with the standard parser."""
    folder = recipe(workspace / "r", metric='kind = "text-stats"\nstat = "characters"', proposals=["hello world\n"])
    Store(workspace / "o.db").close()  # made once (its tables need sqlite-utils); every run after needs none
    done = subprocess.run([sys.executable, "-c", RUN_PROBE, str(folder), str(workspace / "o.db")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "1 []"


# -- commands -----------------------------------------------------------------------------------------


def test_a_command_past_its_time_limit_is_killed_with_its_output_so_far(workspace):
    from overnight.core import process

    started = time.monotonic()
    done = process.run("echo before; sleep 30; echo after", cwd=workspace, seconds=0.5, shell=True)
    assert done.timed_out and done.returncode is None
    assert done.output.strip() == "before" and 0.5 <= done.seconds < 5
    assert time.monotonic() - started < 10


def test_a_command_that_fills_both_pipes_is_read_whole(workspace):
    from overnight.core import process

    done = process.run("head -c 300000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2; echo",
                       cwd=workspace, seconds=30, shell=True)
    assert done.returncode == 0
    assert done.stdout.count("a") == 300_000 and done.output.count("b") == 300_000


def test_what_a_command_left_is_found_among_the_pids_given_out_since_it_started(workspace):
    from overnight.core import process

    done = process.run("setsid sleep 333 & echo started", cwd=workspace, seconds=10, shell=True)
    assert done.stdout.strip() == "started"
    tag = f"{process.TAG}={os.getpid()}".encode()
    assert process._kill_where(tag) == []  # nothing of it is left anywhere, not only among the newest
    now = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    given = process._pids_since(now, 0.1)
    assert any(now in span for span in given) and not any(now - 1 in span for span in given)
    assert process._pids_since(now, 3600) is None  # too long to tell: every process is read


# -- the garbage collector ---------------------------------------------------------------------------


def test_a_run_called_in_process_leaves_the_collector_as_it_found_it(workspace, cli):
    """Only the console script, whose process ends with the run, pauses and freezes the collector;
    a host (these tests) that runs many commands in one process keeps collecting."""
    import gc

    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "wc -c < {file}"', proposals=["hello world\n"])
    frozen = gc.get_freeze_count()
    assert cli("run", folder).exit_code != 0  # not trusted: it stops before the run
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    assert cli("run", folder, "--yes").exit_code == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_console_script_runs_with_what_setting_up_made_frozen(workspace):
    folder = recipe(workspace / "r", metric='kind = "text-stats"\nstat = "characters"', proposals=["hello world\n"])
    probe = ("import gc, sys; from overnight.cli import main; import overnight.core.runner as r; seen = r.start_run\n"
             "def spy(*a, **k):\n    print('frozen', gc.get_freeze_count() > 0, 'collecting', gc.isenabled()); return seen(*a, **k)\n"
             "import overnight.ops.runs as o; o.start_run = spy\n"
             "sys.argv = ['overnight', 'run', sys.argv[1], '--yes']; main.main()")
    done = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "frozen True collecting True" in done.stdout


def test_the_console_script_pauses_the_collector_only_until_its_command_is_loaded(workspace):
    """Importing click and a command's modules is most of a start: the console script collects
    nothing meanwhile, and the command itself runs with the collector on. A library import of
    overnight leaves the collector alone."""
    probe = ("import gc, sys\n"
             "import overnight.cli.main as library\n"
             "print('library', gc.isenabled())\n"
             "from overnight.cli import console\n"
             "print('starting', gc.isenabled())\n"
             "import overnight.core.store as store; seen = store.default_path\n"
             "def spy(*a, **k):\n    print('command', gc.isenabled()); return seen(*a, **k)\n"
             "store.default_path = spy\n"
             "sys.argv = ['overnight', 'status']\n"
             "try:\n    console.main()\n"
             "except SystemExit:\n    pass\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=workspace,
                          env={k: v for k, v in os.environ.items() if k != "OVERNIGHT_DB"})
    assert done.stdout.split("\n")[:3] == ["library True", "starting False", "command True"], done.stdout + done.stderr


def test_a_store_kept_in_the_recipe_folder_does_not_stop_the_run(workspace, cli):
    """The store changes as the run writes it: that is overnight's own writing, not the metric's."""
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "wc -c < {file}"', proposals=["hello world\n"])
    done = cli("run", folder, "--yes", "--db", folder / "mine.db")
    assert done.exit_code == 0, done.output
    assert "which metrics may only read" not in done.output and "Kept 1 of 1" in done.output


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_command_is_measured_in_the_loops_thread_when_alone_and_a_stop_from_elsewhere_kills_it(workspace, parallel):
    """With one experiment in flight, a command metric is measured in the loop's own thread (no
    hand-off); with more, in worker threads. Either way a stop from another thread (the TUI's)
    kills the command at once, and the experiment is recorded as interrupted, not as a crash."""
    from overnight.core import process
    from overnight.core.runner import start_run

    run_ = f"if grep -q slow {{file}}; then touch {workspace}/slow.started; sleep 30; fi; wc -c < {{file}}"
    folder = recipe(workspace / "r", metric=f'kind = "command"\nrun = "{run_}"', proposals=["slow\n"],
                    budget=f"parallel = {parallel}")
    store = Store(workspace / "o.db")
    threads, measure = [], process.run

    def run_in(*args, **kwargs):
        threads.append(threading.get_ident())
        return measure(*args, **kwargs)

    def stop_once_slow(running):
        def watch():
            deadline = time.monotonic() + 20
            while not (workspace / "slow.started").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            running.stop("stopped by the person")
        threading.Thread(target=watch, daemon=True).start()

    process.run = run_in
    try:
        started = time.monotonic()
        summary = start_run(load(folder), store, on_start=stop_once_slow)
    finally:
        process.run = measure
    assert time.monotonic() - started < 15  # not the 30 s of the command
    assert summary.status == "stopped"
    [slow] = [e for e in store.experiments(summary.run_id) if e["seq"] == 1]
    assert (slow["status"], slow["reason"]) == ("interrupted", "stopped by the person")
    store.close()
    in_loop = [t == threading.get_ident() for t in threads]
    assert in_loop == [parallel == 1] * len(threads) and len(threads) == 2  # the baseline, the slow one


def test_a_stopped_run_leaves_the_commands_after_it_free_to_run(workspace):
    """A stop kills the run's commands and any that start while it winds down; once the run has
    ended, a re-measure in the same process (the TUI's, say) runs its commands to their end."""
    from overnight.core import process
    from overnight.core.runner import start_run

    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "sleep 5; wc -c < {file}"', proposals=["hello\n"])
    store = Store(workspace / "o.db")
    summary = start_run(load(folder), store, on_start=lambda running: running.stop("stopped by a test"))
    store.close()
    assert summary.status == "stopped"
    done = process.run("echo 5", cwd=workspace, seconds=10, shell=True)
    assert (done.returncode, done.stdout.strip()) == (0, "5")
