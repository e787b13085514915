"""The first ledger, read by a process of its own while `overnight tui` imports the UI.

A store with one run opens on that run's dashboard, which needs the run's every experiment
as numbers (tui/ledger.py): 100,000 rows take a tenth of a second or more to read, and the UI's
imports take longer still. Both are Python work, so a thread would only take turns with the
imports; a forked child reads on the other core instead, and hands the ledger over as bytes
(`Ledger.packed`), which the UI takes in without making a row.

Only the console script starts it (cli/tui.py), before the UI is imported: the process is
still small and has no other thread. Where there is no fork or a single core, nothing is
started and the dashboard reads the ledger itself, as it does when anything here fails.
"""

from __future__ import annotations

import marshal
import os
import signal
from pathlib import Path

from .ledger import Ledger

_pending: "Prefetch | None" = None
PART_ROWS = 65536  # rows sent at a time (about 2 MB): neither process holds the whole ledger twice


class Prefetch:
    def __init__(self, path: Path, pid: int, fd: int):
        self.path, self.pid, self.fd = path, pid, fd

    def take(self) -> Ledger | None:
        """The child's ledger, taken in part by part as it reads it; None when it read none, or
        stopped before its end mark (a failure, a kill), whatever it had sent."""
        ledger = None
        try:
            with os.fdopen(self.fd, "rb") as pipe:
                while len(head := pipe.read(8)) == 8:
                    size = int.from_bytes(head, "little")
                    if size == 0:  # the end mark
                        return ledger
                    data = pipe.read(size)
                    if len(data) != size:
                        return None
                    part = marshal.loads(data)
                    if ledger is None:
                        ledger = Ledger(part[0])
                    ledger.add_packed(part)
            return None
        except (OSError, ValueError, EOFError, TypeError):
            return None
        finally:
            self._reap()

    def discard(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)  # it only reads: nothing of it is worth waiting for
        except OSError:
            pass
        os.close(self.fd)
        self._reap()

    def _reap(self) -> None:
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def start(path: Path) -> None:
    """Forks the child that reads the ledger of the store's only run, if it has exactly one."""
    global _pending
    path = Path(path)
    if not hasattr(os, "fork") or _cores() < 2:
        return
    if not path.is_file():
        return  # no store yet: the UI welcomes, and nothing is made here
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return
    if pid == 0:  # the child: never returns, never runs the parent's exit handlers
        code = 1
        try:
            os.close(read)
            _child(path, write)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _pending = Prefetch(path, pid, read)


def _cores() -> int:
    """The cores this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _child(path: Path, fd: int) -> None:
    from overnight.core.store import Store

    from .data import read_ledger

    store = Store(path, readonly=True)
    runs = store.conn.execute("select id from runs limit 2").fetchall()
    with os.fdopen(fd, "wb") as pipe:
        if len(runs) == 1:  # what the UI opens on (OvernightApp.opens_single)
            sent = 0

            def send(ledger: Ledger, at_least: int = PART_ROWS) -> None:
                nonlocal sent
                if len(ledger) - sent >= at_least:  # a part at a time: the UI takes each in as the next is read
                    data = marshal.dumps(ledger.packed(sent))
                    pipe.write(len(data).to_bytes(8, "little") + data)
                    sent = len(ledger)

            send(read_ledger(store, runs[0][0], send), at_least=0)
        pipe.write(bytes(8))  # the end mark: a part of no bytes
    store.close()


def take(path: Path, run_id: int) -> Ledger | None:
    """The ledger read ahead, when it is this store's and this run's; asked for once."""
    global _pending
    pending, _pending = _pending, None
    if pending is None:
        return None
    if Path(path) != pending.path:
        pending.discard()
        return None
    ledger = pending.take()
    return ledger if ledger is not None and ledger.run_id == run_id else None


def discard() -> None:
    """The UI closes without having asked (a store of several runs, say)."""
    global _pending
    pending, _pending = _pending, None
    if pending is not None:
        pending.discard()
