"""Running a command under a time limit, killing its whole process group on timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

_live: set[int] = set()
_lock = threading.Lock()
# Set by kill_all(): a command that starts after a stop (its thread was already on its way)
# is killed at once instead of running to its time limit.
_stopped = threading.Event()


@dataclass
class Finished:
    returncode: int | None  # None when it timed out or was killed
    output: str  # stdout, then stderr
    seconds: float
    timed_out: bool = False
    stdout: str = ""

    def tail(self, lines: int = 50) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def run(args, *, cwd, seconds: float, env: dict | None = None, shell: bool = False) -> Finished:
    """Runs a command in its own session so a timeout can kill everything it started."""
    start = time.monotonic()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        shell=shell,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
        errors="replace",
    )
    with _lock:
        _live.add(proc.pid)
    if _stopped.is_set():
        _kill_group(proc.pid)
    try:
        out, err = proc.communicate(timeout=seconds)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        timed_out = True
    finally:
        with _lock:
            _live.discard(proc.pid)
        # Children that outlive the command (a daemon it left behind) go too.
        _kill_group(proc.pid)
    code = None if timed_out or proc.returncode < 0 else proc.returncode
    output = out + ("\n" if out and err and not out.endswith("\n") else "") + err
    return Finished(code, output, time.monotonic() - start, timed_out, stdout=out)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def allow() -> None:
    """Lets commands run again; a run calls it as it starts."""
    _stopped.clear()


def stopped() -> bool:
    """True once the run was stopped: an executor polling a remote measurement cancels it."""
    return _stopped.is_set()


def kill_all() -> None:
    """Ends every command still running (on Ctrl-C or SIGTERM), and any that starts after."""
    _stopped.set()
    with _lock:
        pids = list(_live)
    for pid in pids:
        _kill_group(pid)
