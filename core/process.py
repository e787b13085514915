"""Running a command under a time limit; nothing it starts outlives it, or overnight.

Each command runs in its own session with a tag in its environment that its descendants
inherit. When it ends, every process still carrying its tag is killed, even one that left
the group (`setsid`, a double fork). Should overnight itself die (even by SIGKILL), a small
watchdog sees it end and kills every tagged process, and every command that was still starting
once it runs.
Output is kept in a capped buffer (its head and its tail), so a command printing 100 MB
does not hold 100 MB. While a command runs, the thread that started it does what was left
for it to do meanwhile (`meanwhile`): the next work folder, say, made off the loop's path.
"""

from __future__ import annotations

import functools
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

_live: set[int] = set()
_lock = threading.RLock()  # reentrant: `kill_all` may run in a signal handler while this thread holds it
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
    stdout: str = ""  # what a metric reads its number from: without the note where the output was cut
    killed_by: int | None = None  # the signal that ended it, when one did (not overnight's time limit)
    stderr: str = ""

    def ended(self) -> str:
        """How it ended, for a reason: "exited with code 3", "was killed by signal 9 (SIGKILL)"."""
        if self.killed_by is None:
            return f"exited with code {self.returncode}"
        try:
            name = f" ({signal.Signals(self.killed_by).name})"
        except ValueError:
            name = ""
        return f"was killed by signal {self.killed_by}{name}"

    def tail(self, lines: int = 50, chars: int = 8000) -> str:
        """The last lines of the output, for a trace: at most `chars` of them, so that one line of
        a megabyte does not flood the terminal that shows why a measurement failed."""
        text = "\n".join(self.output.splitlines()[-lines:])
        return text if len(text) <= chars else f"[... {len(text) - chars} characters not shown ...]" + text[-chars:]


def run(args, *, cwd, seconds: float, env: dict | None = None, shell: bool = False) -> Finished:
    """Runs a command in its own session so a timeout can kill everything it started.

    Its `seconds` are its own: from just before it is started to its exit, not the clean-up
    after it. Started without a `preexec_fn`, so Python can vfork: forking a large process
    costs milliseconds per command (the watchdog, not a death signal, covers overnight's death)."""
    tag = f"{os.getpid()}-{next(_count)}"
    _watch()
    start = time.monotonic()
    proc = subprocess.Popen(
        args, cwd=cwd, env={**(os.environ if env is None else env), TAG: tag}, shell=shell,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    with _lock:
        _live.add(proc.pid)
    if _stopped.is_set():
        _kill_group(proc.pid)
    out, err = Capped(), Capped()
    reading = Reading({proc.stdout: out, proc.stderr: err}, proc)
    try:
        seen = _do_meanwhile(reading)
        timed_out = not reading.until_exit(start + seconds)
        if timed_out:
            _kill_group(proc.pid)
        proc.wait()
        ended = time.monotonic() if seen is None else seen
    finally:
        _clean_up(proc, tag, time.monotonic() - start, reading)
    code = None if timed_out or proc.returncode < 0 else proc.returncode
    o, e = out.text(), err.text()
    output = o + ("\n" if o and e and not o.endswith("\n") else "") + e
    signalled = -proc.returncode if proc.returncode < 0 and not timed_out else None
    return Finished(code, output, ended - start, timed_out, stdout=out.text(marked=False) if out.dropped else o,
                    stderr=e, killed_by=signalled)


DRAIN_SECONDS = 2.0  # how long output is still read once the command and all it started are gone


def _clean_up(proc: subprocess.Popen, tag: str, seconds: float, reading: "Reading") -> None:
    """Once a command ended: it and whatever it started go (a daemon it left behind, one that left
    its group), then what is left of its output is read."""
    with _lock:
        _live.discard(proc.pid)
    _kill_group(proc.pid)
    _kill_where(f"{TAG}={tag}".encode(), since=proc.pid, seconds=seconds)
    reading.rest(DRAIN_SECONDS)


_queued = threading.local()  # .work: what the calling thread does meanwhile, in order


@contextmanager
def meanwhile(*work: Callable[[], object]) -> Iterator[None]:
    """Within it, the calling thread's next commands do `work` right after they start, while they
    run and it would only wait: each piece once, and none after its command has ended (what is left
    stays undone; who queued it does it then, or not at all). Work must not raise, and should
    take far less than a command: a command's end is seen only once the piece at hand is done."""
    queue = _queued.__dict__.setdefault("work", [])
    queue.extend(work)
    try:
        yield
    finally:
        for piece in work:
            if piece in queue:
                queue.remove(piece)


class Later:
    """Work done once, by whoever comes first: a command's thread while the command runs (queued
    with `meanwhile`), or the caller that needs its result."""

    def __init__(self, fn: Callable, *args):
        self.fn, self.args = fn, args
        self.lock = threading.Lock()
        self.done = False
        self.value = self.error = None

    def __call__(self) -> None:
        with self.lock:
            if self.done:
                return
            try:
                self.value = self.fn(*self.args)
            except Exception as exc:  # raised to the caller of `result`, where it would have been
                self.error = exc
            self.done = True

    def result(self):
        self()
        if self.error is not None:
            raise self.error
        return self.value


def _do_meanwhile(reading: "Reading") -> float | None:
    """Does the queued work while the command runs. When the command turns out to have ended
    during a piece, the moment that piece began (its end is not known closer than that): counting
    from then, the command's seconds err on the short side, never on overnight's time. Work that
    outlasted the thread's last command is not done during the next: commands that short are
    left to run alone, and the work to whoever queued it."""
    queue = getattr(_queued, "work", None)
    if getattr(_queued, "outlasted", False):
        _queued.outlasted = False
        return None
    began = None
    while queue and reading.running():
        began = time.monotonic()
        queue.pop(0)()
    _queued.outlasted = began is not None and not reading.running()
    return began if _queued.outlasted else None


class Reading:
    """A command's output streams, read in the calling thread (no reader threads to start) until
    the command exits: a pidfd says when, or a short poll where there is none."""

    def __init__(self, streams: dict, proc: subprocess.Popen):
        self.proc = proc
        self.selector = selectors.DefaultSelector()
        for stream, buffer in streams.items():
            os.set_blocking(stream.fileno(), False)
            self.selector.register(stream, selectors.EVENT_READ, buffer)
        try:
            self.pidfd = os.pidfd_open(proc.pid)
            self.selector.register(self.pidfd, selectors.EVENT_READ, None)
        except (AttributeError, OSError):
            self.pidfd = None

    def until_exit(self, deadline: float) -> bool:
        """Reads until the command exits (True) or the deadline passes (False)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:  # unless it ended while this thread did other work (see `meanwhile`)
                return not self.running()
            for key, _ in self.selector.select(left if self.pidfd is not None else min(left, 0.005)):
                if key.data is None:
                    return True
                self._read(key)
            if self.pidfd is None and self.proc.poll() is not None:
                return True

    def running(self) -> bool:
        """Whether the command still runs, reading what it wrote so far; waits for nothing."""
        for key, _ in self.selector.select(0):
            if key.data is None:
                return False
            self._read(key)
        return self.pidfd is not None or self.proc.poll() is None

    def rest(self, seconds: float) -> None:
        """What is left in the pipes, until every writer has closed them (or `seconds` pass)."""
        if self.pidfd is not None:
            self.selector.unregister(self.pidfd)
            os.close(self.pidfd)
        deadline = time.monotonic() + seconds
        while self.selector.get_map() and time.monotonic() < deadline:
            for key, _ in self.selector.select(deadline - time.monotonic()):
                self._read(key)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()

    def _read(self, key) -> None:
        try:
            chunk = os.read(key.fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            key.data.add(chunk)
        else:
            self.selector.unregister(key.fileobj)
            key.fileobj.close()


class Capped:
    """A stream's output, its first and last CAP/2 bytes, with a line saying what was cut."""

    def __init__(self, cap: int = CAP):
        self.half = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > self.half:
            cut = len(self.tail) - self.half
            self.dropped += cut
            del self.tail[:cut]

    def text(self, marked: bool = True) -> str:
        """The output kept; where it was cut, a line that says so (`marked`), or else a bare line
        break: what a metric reads for its number, so that no number is read from the note, or
        made of digits from both sides of the cut."""
        cut = (f"\n[... {self.dropped} bytes of output not kept ...]\n" if marked else "\n") if self.dropped else ""
        text = bytes(self.head).decode(errors="replace") + cut + bytes(self.tail).decode(errors="replace")
        return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def kill_tagged(tag: str) -> int:
    """Kills every process whose environment carries `tag` (or starts with it, for a prefix)."""
    return len(_kill_where(f"{TAG}={tag}".encode()))


def _kill_where(marker: bytes, since: int | None = None, seconds: float = 0.0) -> list[int]:
    """Kills the processes whose environment holds `marker`. With `since` (the pid of a command
    that ran `seconds`), only the pids given out since are read: what the command started. When
    those are few, each is looked at by its number (most are gone already: one failed open
    each), which costs less than listing every process of the machine."""
    given = _pids_since(since, seconds) if since is not None else None
    if given is not None and sum(map(len, given)) <= PROBE_MOST:
        pids = (pid for span in given for pid in span)
    else:
        names = os.listdir("/proc") if os.path.isdir("/proc") else ()
        pids = (int(n) for n in names if n.isdigit() and (given is None or any(int(n) in span for span in given)))
    killed = []
    for pid in pids:
        environ = _environ(pid)
        if environ and any(v == marker or v.startswith(marker + b"-") for v in environ.split(b"\0")) \
                and not _ours(pid):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed


PROBE_MOST = 64  # pids looked at one by one at most; past that, /proc is listed


def _environ(pid: int) -> bytes:
    """A process's environment as /proc has it; empty for one that is gone or not ours to read."""
    path = f"/proc/{pid}/environ"
    if not os.access(path, os.R_OK):  # most are gone: told without raising, which costs more
        return b""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _ours(pid: int) -> bool:
    """Whether `pid` is this process or one of its threads (a thread's number is a pid too, and a
    pid looked at by its number may be one)."""
    return pid == os.getpid() or os.path.exists(f"/proc/self/task/{pid}")


FORKS_PER_SECOND = 50_000  # more than a machine can start: a bound on the pids given out meanwhile


def _pids_since(first: int, seconds: float) -> list[range] | None:
    """The pids given out since `first` was, or None when that cannot be told. Pids are given out
    in turn, wrapping at pid_max: those since are the ones from `first` to the last given out,
    around the wrap, as long as fewer than pid_max were given out."""
    try:
        last, most = _read_int("/proc/sys/kernel/ns_last_pid"), _pid_max()
    except (OSError, ValueError):
        return None
    if seconds * FORKS_PER_SECOND >= most // 2:
        return None
    if last >= first:
        return [range(first, last + 1)]
    return [range(first, most), range(1, last + 1)]


@functools.cache
def _pid_max() -> int:
    return _read_int("/proc/sys/kernel/pid_max")  # set at boot, as good as always


def _read_int(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return int(os.read(fd, 64))
    finally:
        os.close(fd)


def _watch() -> None:
    """Starts, once per process, the watchdog that kills tagged processes when overnight dies."""
    global _watchdog
    with _lock:
        if _watchdog is not None and _watchdog.poll() is None:
            return
        code = f"exec({_REAP!r}); watch({os.getpid()}, {f'{TAG}={os.getpid()}'.encode()!r})"
        _watchdog = subprocess.Popen([sys.executable, "-S", "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        try:  # what a fork of overnight looks like in /proc, told while overnight surely lives
            looks = [_read(f"/proc/{os.getpid()}/{name}") for name in ("cmdline", "environ")]
            _watchdog.stdin.write(b"%d %d\n" % tuple(map(len, looks)) + b"".join(looks))
            _watchdog.stdin.flush()
        except OSError:
            pass


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# The watchdog wakes when overnight ends (or its end of the pipe closes). It reads /proc again
# until five passes in a row find nothing to kill and nothing still starting. On a busy machine
# a command may wait seconds for the CPU at any step of its start, and its tag can be read only
# once its exec is done. Before that, it is in one of two steps:
# - forked, in its own session, not yet exec'd: it looks like overnight itself, the same command
#   line and environment;
# - inside its exec: /proc shows no command line and no environment yet.
# The watchdog waits for such processes (a minute at most) and kills them once they carry the tag.
_REAP = '''
import os, select, signal, time
def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None
def starting(pid, env, parent):
    if env and env != parent[1]:
        return False
    stat = read(f"/proc/{pid}/stat") or b""
    fields = stat[stat.rfind(b")") + 2:].split()
    if len(fields) < 7 or fields[0] in (b"Z", b"X") or int(fields[6]) & 0x200000:  # gone, or a kernel thread
        return False
    if env:
        return fields[3] == str(pid).encode() and read(f"/proc/{pid}/cmdline") == parent[0]
    return read(f"/proc/{pid}/cmdline") == b""
def reap_once(marker, parent):
    found = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        env = read(f"/proc/{name}/environ")
        if env is None:
            continue
        if any(v.startswith(marker + b"-") for v in env.split(b"\\0")):
            try:
                os.kill(int(name), signal.SIGKILL)
                found += 1
            except OSError:
                pass
        elif starting(int(name), env, parent):
            found += 1
    return found
def reap(marker, parent):
    quiet = 0
    for _ in range(1200):
        quiet = 0 if reap_once(marker, parent) else quiet + 1
        if quiet == 5:
            return
        time.sleep(0.05)
def told(n):
    data = b""
    while len(data) < n and (chunk := os.read(0, n - len(data))):
        data += chunk
    return data
def watch(pid, marker):
    head = b""
    while not head.endswith(b"\\n") and (byte := os.read(0, 1)):
        head += byte
    sizes = [int(n) for n in head.split()] or [0, 0]
    parent = told(sizes[0]), told(sizes[1])
    try:  # overnight's end, seen at once: a command still starting may hold the pipe open a while
        ends = [os.pidfd_open(pid)]
    except (AttributeError, OSError):
        ends = []
    select.select([0, *ends], [], [])
    reap(marker, parent)
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
