"""Running a command under a time limit; nothing it starts outlives it, or overnight.

Each command runs in its own session with a tag in its environment that its descendants
inherit. When it ends, every process still carrying its tag is killed, even one that left
the group (`setsid`, a double fork). Should overnight itself die (even by SIGKILL), a small
watchdog that holds the other end of a pipe sees it close and kills every tagged process.
Output is kept in a capped buffer (its head and its tail), so a command printing 100 MB
does not hold 100 MB.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_live: set[int] = set()
_lock = threading.Lock()
# Set by kill_all(): a command that starts after a stop (its thread was already on its way)
# is killed at once instead of running to its time limit.
_stopped = threading.Event()

TAG = "OVERNIGHT_PROCESS_TAG"
CAP = 1 << 20  # bytes of output kept per stream: the first half and the last half
_count = iter(range(1, 1 << 62))
_watchdog: subprocess.Popen | None = None


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
    tag = f"{os.getpid()}-{next(_count)}"
    _watch()
    _prctl()
    proc = subprocess.Popen(
        args, cwd=cwd, env={**(os.environ if env is None else env), TAG: tag}, shell=shell,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=_die_with_parent,
    )
    with _lock:
        _live.add(proc.pid)
    if _stopped.is_set():
        _kill_group(proc.pid)
    out, err = Capped(), Capped()
    readers = [threading.Thread(target=b.drain, args=(s,), daemon=True) for b, s in ((out, proc.stdout), (err, proc.stderr))]
    for r in readers:
        r.start()
    try:
        proc.wait(timeout=seconds)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
        timed_out = True
    finally:
        with _lock:
            _live.discard(proc.pid)
        # Children that outlive the command (a daemon it left behind, one that left its group) go too.
        _kill_group(proc.pid)
        kill_tagged(tag)
    for r in readers:
        r.join()
    code = None if timed_out or proc.returncode < 0 else proc.returncode
    o, e = out.text(), err.text()
    output = o + ("\n" if o and e and not o.endswith("\n") else "") + e
    return Finished(code, output, time.monotonic() - start, timed_out, stdout=o)


class Capped:
    """A stream's output, its first and last CAP/2 bytes, with a line saying what was cut."""

    def __init__(self, cap: int = CAP):
        self.half = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def drain(self, stream) -> None:
        with stream:
            for chunk in iter(lambda: stream.read1(65536), b""):
                room = self.half - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                self.tail += chunk
                if len(self.tail) > self.half:
                    cut = len(self.tail) - self.half
                    self.dropped += cut
                    del self.tail[:cut]

    def text(self) -> str:
        cut = f"\n[... {self.dropped} bytes of output not kept ...]\n" if self.dropped else ""
        text = bytes(self.head).decode(errors="replace") + cut + bytes(self.tail).decode(errors="replace")
        return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def _prctl():
    """libc's prctl, looked up in overnight before any fork (a lookup in the child could deadlock)."""
    global _libc_prctl
    if _libc_prctl is None:
        try:
            _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _libc_prctl = False
    return _libc_prctl


_libc_prctl = None


def _die_with_parent() -> None:
    """In the child, before exec: killed when overnight dies (Linux), whatever killed it."""
    if _libc_prctl:
        _libc_prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def kill_tagged(tag: str) -> int:
    """Kills every process whose environment carries `tag` (or starts with it, for a prefix)."""
    return len(_kill_where(f"{TAG}={tag}".encode()))


def _kill_where(marker: bytes) -> list[int]:
    killed = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(v == marker or v.startswith(marker + b"-") for v in environ.split(b"\0")):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except OSError:
                pass
    return killed


def _watch() -> None:
    """Starts, once per process, the watchdog that kills tagged processes when overnight dies."""
    global _watchdog
    with _lock:
        if _watchdog is not None and _watchdog.poll() is None:
            return
        code = f"import sys; sys.stdin.buffer.read(); exec({_REAP!r}); reap({f'{TAG}={os.getpid()}'.encode()!r})"
        _watchdog = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


_REAP = '''
import os, signal
def reap(marker):
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\\0")
        except OSError:
            continue
        if any(v.startswith(marker + b"-") for v in env):
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass
'''


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
    _kill_where(f"{TAG}={os.getpid()}".encode())
