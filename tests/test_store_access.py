"""A store the person may not write is still read, a write says which file or folder refuses it,
and Ctrl-C at any moment of a command's start ends it with 130 and one word.

The commands run as the console script does, in a process of their own. Tests run as root here,
which ignores file modes: those that need a mode to count drop root's power over files for the
command (setpriv), or are skipped when that cannot be done."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.data.core.kit import no_traceback, recipe, rows


def overnight(args: list, cwd: Path, code: str = "", as_user: bool = False) -> subprocess.CompletedProcess:
    """`overnight ARGS` as its console script runs it, with `code` run first in the same process;
    `as_user`: without root's power over file modes."""
    program = (f"import sys; sys.argv = ['overnight', *{[str(a) for a in args]!r}]\n{code}\n"
               "from overnight.cli.console import main\nmain()")
    command = [sys.executable, "-c", program]
    return subprocess.run([*(user() if as_user else []), *command], cwd=cwd, capture_output=True, text=True, timeout=120)


def user() -> list[str]:
    """The prefix that runs a command as an ordinary user would, file modes and all."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    drop = [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--inh-caps=-all"] if setpriv else []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o555)
        probe = drop and subprocess.run([*drop, sys.executable, "-c", f"import os; raise SystemExit(os.access({tmp!r}, os.W_OK))"],
                                        capture_output=True)
        Path(tmp).chmod(0o755)
    if not probe or probe.returncode != 0:
        pytest.skip("tests run as root, which ignores file modes, and setpriv cannot drop that here")
    return drop


@pytest.fixture
def store(workspace, cli) -> Path:
    """A workspace whose store holds one finished run of recipe 'r' (its experiment 2 changes the text)."""
    assert cli("run", recipe(workspace / "r", proposals=["hello world\n", "hi\n"]), "--yes").exit_code == 0
    return workspace / ".overnight" / "overnight.db"


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


READS = [(["status"], "finished"), (["log"], "baseline"), (["show", "1:2"], "status"), (["diff", "1:2"], "-hello"),
         (["export", "1"], "seq"), (["apply", "1:2", "--dry-run"], "-hello"),
         (["report", "1", "-o", "report.html"], "Wrote")]


def test_a_store_in_a_read_only_folder_is_read_and_a_write_names_the_folder(store, workspace):
    user()
    folder = store.parent
    before = listing(folder)
    folder.chmod(0o555)
    try:
        for args, shown in READS:
            if args[0] == "report" and importlib.util.find_spec("matplotlib") is None:
                continue  # the report draws with matplotlib, an extra
            done = overnight(args, workspace, as_user=True)
            assert done.returncode == 0 and shown in done.stdout + done.stderr, (args, done.stderr)
        refused = f"Error: Cannot write the store {store}: the folder {folder} is not writable"
        for args in (["star", "1:2"], ["steer", "be bolder"], ["apply", "1:2", "--yes"]):
            done = overnight(args, workspace, as_user=True)
            assert done.returncode == 1 and done.stderr == refused + ".\n", (args, done.stderr)
        done = overnight(["run", workspace / "r", "--resume", "--yes"], workspace, as_user=True)
        assert done.returncode == 1 and done.stderr == refused + "; nothing was changed.\n", done.stderr
        assert listing(folder) == before  # nothing written, no file left beside the store
    finally:
        folder.chmod(0o755)
    assert (workspace / "r" / "doc.txt").read_text() == "hello\n"  # the refused apply wrote nothing

    locked = workspace / "locked"  # a store still to be made, in a folder no one may write
    locked.mkdir(mode=0o555)
    done = overnight(["run", workspace / "r", "--yes", "--db", locked / ".overnight" / "overnight.db"], workspace, as_user=True)
    assert done.returncode == 1 and done.stderr == (f"Error: Cannot write the store {locked}/.overnight/overnight.db: "
                                                    f"the folder {locked} is not writable; nothing was changed.\n"), done.stderr


def test_reading_a_read_only_store_leaves_no_file_beside_it_that_a_later_write_would_trip_on(store, workspace):
    user()
    before = listing(store.parent)
    store.chmod(0o444)
    done = overnight(["status"], workspace, as_user=True)
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr
    assert listing(store.parent) == before  # no -shm or -wal made with the store's read-only mode
    done = overnight(["star", "1:2"], workspace, as_user=True)
    assert done.returncode == 1 and done.stderr == f"Error: Cannot write the store {store}: the file is not writable.\n"
    store.chmod(0o644)
    assert overnight(["star", "1:2"], workspace, as_user=True).returncode == 0

    shm = store.with_name(store.name + "-shm")  # as an earlier version's read of a read-only store left it
    shm.write_bytes(b"")
    shm.chmod(0o444)
    for args in (["star", "1:2"], ["run", workspace / "r", "--resume", "--yes"]):
        done = overnight(args, workspace, as_user=True)
        assert done.returncode == 1 and no_traceback(done.stderr), done.stderr
        assert done.stderr.startswith(f"Error: Cannot write the store {store}: {shm} is not writable"), done.stderr
        assert done.stderr.count("\n") == 1


CTRL_C_AT_IMPORT = """
import os, signal
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, CtrlC())
"""


@pytest.mark.parametrize("module", ["click", "overnight.cli.inspect", "overnight.core.store"])
def test_ctrl_c_while_a_command_starts_ends_it_with_130_and_one_word(workspace, module):
    """While click and the command group are imported, the command is loaded, the store opened."""
    done = overnight(["status"], workspace, CTRL_C_AT_IMPORT.format(module=module))
    assert (done.returncode, done.stderr, done.stdout) == (130, "Interrupted.\n", "")


CTRL_C_IN_STORE = """
import os, signal
from overnight.core.store import Store
step = getattr(Store, {step!r})
def interrupted(self, *args):
    os.kill(os.getpid(), signal.SIGINT)
    return step(self, *args)
setattr(Store, {step!r}, interrupted)
"""


@pytest.mark.parametrize("step", ["_foreign", "_migrate"])
def test_a_store_a_ctrl_c_left_unmade_reads_as_a_new_one_and_the_next_run_makes_it(workspace, step):
    """Ctrl-C as a run makes its store leaves a file with nothing in it (empty, or a header alone):
    reading it finds no runs and writes nothing; the next run makes the store of it."""
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    db = workspace / ".overnight" / "overnight.db"
    done = overnight(["run", folder, "--yes"], workspace, CTRL_C_IN_STORE.format(step=step))
    assert (done.returncode, done.stderr) == (130, "Interrupted.\n")
    left = listing(db.parent)
    assert len(left["overnight.db"]) in (0, 4096)
    done = overnight(["status"], workspace)
    assert done.returncode == 0 and done.stdout.startswith(f"No runs in {db} yet."), done.stdout + done.stderr
    done = overnight(["log"], workspace)
    assert done.returncode == 1 and done.stderr.startswith(f"Error: There are no runs in {db} yet"), done.stderr
    assert listing(db.parent) == left
    assert overnight(["run", folder, "--yes"], workspace).returncode == 0
    assert rows(db, "select status from runs") == [{"status": "finished"}]
