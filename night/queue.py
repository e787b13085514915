"""A night: recipes one after another, each run exactly as `overnight run RECIPE` runs it, in a
process of its own. A recipe that fails is recorded and the night goes on; a night killed even
with SIGKILL resumes where it stood, finished recipes are not run again.

Why processes: a failing or crashing recipe cannot take the night with it, the run is the very
command a person would type (trust, checks, summary and resume included), and a killed night
leaves each run in the state `overnight run --resume` already knows how to continue.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from overnight.core.errors import OvernightError
from overnight.core.store import RESUMABLE
from overnight.core.files import pid_alive

from .state import DONE, Item, Nights

MIN_MINUTES = 0.2  # less than this left before --until: the recipe is skipped, not squeezed
GRACE_SECONDS = 60  # past --until, a run still going (an experiment in flight) gets this long, then SIGTERM


def parse_until(text: str, now: float | None = None) -> float:
    """'07:00' is the next 07:00 to come: tomorrow's when it is already past today."""
    try:
        hour, minute = (int(p) for p in text.strip().split(":"))
        wanted = dt.time(hour, minute)
    except ValueError:
        raise OvernightError(f"--until {text!r} is not a time of day: write it as HH:MM, e.g. --until 07:00.") from None
    start = dt.datetime.fromtimestamp(now if now is not None else time.time())
    end = dt.datetime.combine(start.date(), wanted)
    if end <= start:
        end += dt.timedelta(days=1)
    return end.timestamp()


def share(until: float | None, minutes: float | None, left: int, now: float) -> float | None:
    """This recipe's minutes: --minutes, and an equal share of what remains before --until."""
    caps = [minutes] if minutes else []
    if until is not None:
        caps.append((until - now) / 60 / max(left, 1))
    return min(caps) if caps else None


def command(item: Item, db: Path, minutes: float | None, resume: bool, yes: bool = False) -> list[str]:
    # Trust was settled before the night began (cli/night.py), and each run checks it again: a
    # recipe changed since is refused, not run. Only a night started with --yes passes it on.
    cmd = [sys.executable, "-m", "overnight.cli.main", "run", item.path, *(["--yes"] if yes else []), "--db", str(db)]
    if resume:
        cmd.append("--resume")
    if minutes is not None:
        cmd += ["--minutes", f"{minutes:.3f}"]
    return cmd


def _die_with_parent() -> None:
    """Linux: the run gets SIGTERM (a clean, resumable stop) when the night dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Night:
    def __init__(self, nights: Nights, night_id: int, say: Callable[[str], None], yes: bool = False):
        self.nights = nights
        self.yes = yes  # the person trusted every recipe for this night, as it may become
        self.night_id = night_id
        self.say = say
        self.row = nights.night(night_id)
        self.proc: subprocess.Popen | None = None
        self.stopping: str | None = None  # why a signal stopped the night: "interrupted by Ctrl-C" or "... SIGTERM"

    def run(self) -> str:
        """Runs what is left of the night; returns its status (finished, or stopped by a signal)."""
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            items = self.nights.items(self.night_id)
            for item in items:
                if item.status in DONE:
                    continue
                left = sum(1 for i in items if i.status not in DONE)
                self._one(item, len(items), left)
                if self.stopping:
                    break
        except KeyboardInterrupt:
            self.stopping = "interrupted by Ctrl-C"
            self._reap()
        finally:
            signal.signal(signal.SIGTERM, previous)
        status = "stopped" if self.stopping else "finished"
        self.nights.update(self.night_id, status=status, ended_at=time.time(), pid=None)
        return status

    def _on_sigterm(self, *_):
        self.stopping = "interrupted by SIGTERM"
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()

    def _one(self, item: Item, total: int, left: int) -> None:
        label = f"[{item.position}/{total}] {item.recipe}"
        resume = self._resumable(item)
        if resume is not None and resume["status"] not in RESUMABLE:
            self._record(item, 0, Path(item.log or self._log_path(item)))  # it ended as the night died
            self.say(f"{label}: {item.status}: {item.reason}")
            return
        now = time.time()
        minutes = share(self.row["until"], self.row["minutes"], left, now)
        if self.row["until"] is not None and minutes < MIN_MINUTES:
            self.nights.update_item(item, status="skipped", reason="no time left before the night's end", ended_at=now)
            self.say(f"{label}: skipped, no time left before {_clock(self.row['until'])}.")
            return
        if minutes is not None and resume:
            minutes += (resume["seconds"] or 0) / 60  # a resumed run's budget counts its earlier sessions
        log = self._log_path(item)
        fields = {"status": "running", "pid": None, "log": str(log)}
        if not item.started_at:
            fields["started_at"] = now
        self.nights.update_item(item, **fields)
        what = f"resuming run {resume['id']}" if resume else "starting"
        cap = f", up to {minutes:.1f} min" if minutes is not None else ""
        self.say(f"{label}: {what}{cap} (log: {_short(log)})")
        code = self._spawn(item, log, minutes, bool(resume))
        self._record(item, code, log)
        self.say(f"{label}: stopped with the night; `overnight night --resume` continues it." if self.stopping
                 else f"{label}: {item.status}: {item.reason}")

    def _resumable(self, item: Item) -> dict | None:
        """The run of an item an earlier session of the night left unfinished, once its process is gone."""
        if item.status != "running":
            return None
        if item.pid:
            _wait_gone(item.pid)
        run = self.nights.run_of(item)
        if run is not None:
            self.nights.update_item(item, run_id=run["id"])
        return run

    def _spawn(self, item: Item, log: Path, minutes: float | None, resume: bool) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(command(item, self.nights.store.path, minutes, resume, self.yes), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
            self.nights.update_item(item, pid=self.proc.pid)
            return self._wait(self.proc)

    def _wait(self, proc: subprocess.Popen) -> int:
        until = self.row["until"]
        while True:
            try:
                return proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                if until is not None and time.time() > until + GRACE_SECONDS:
                    proc.terminate()  # the run stops cleanly; its summary says so
                    until = None

    def _reap(self) -> None:
        # Ctrl-C reached the run too (one process group): let it record its clean stop.
        if self.proc is not None:
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def _record(self, item: Item, code: int, log: Path) -> None:
        run = self.nights.run_of(item)
        fields = {"pid": None, "ended_at": time.time(), "run_id": run["id"] if run else None}
        if run is not None and run["status"] == "finished":
            fields.update(status="finished", reason=f"run {run['id']}: {_first(run['stop_reason'])}")
        elif run is not None and run["status"] == "stopped":
            fields.update(status="stopped", reason=f"run {run['id']} stopped: {_first(run['stop_reason'])}")
            if self.stopping:  # the night was stopped: this item resumes with it
                fields.update(status="running", ended_at=None)
        else:
            said = _error_of(log) or f"exit code {code}"
            fields.update(status="failed", reason=f"run {run['id']} failed: {said}" if run else said)
        self.nights.update_item(item, **fields)

    def _log_path(self, item: Item) -> Path:
        return self.nights.store.path.parent / "nights" / str(self.night_id) / f"{item.position}-{item.recipe}.log"


def _wait_gone(pid: int, seconds: float = 120) -> None:
    """A run the killed night left behind is stopping (SIGTERM from its parent's death): let it."""
    deadline = time.monotonic() + seconds
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _error_of(log: Path) -> str:
    """The sentence the run ended with: its last `Error:` line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line[len("Error: "):] for line in lines if line.startswith("Error: ")]
    return _first(errors[-1]) if errors else ""


def _first(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def _clock(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M") if ts else "-"


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
