"""Where a measurement runs. The local one uses a fresh work folder on this machine.

The seam is `Executor.measure(view, request) -> Outcome` (core/contracts.py): a cluster
executor could ship the materialized folder to a worker and return the same Outcome,
with no change to the loop or to `core.measure`.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import stat
import tempfile
import threading
import time
import traceback
import uuid
import weakref
from pathlib import Path
from typing import Callable

from . import process
from .contracts import Executor, Measurement, MeasureRequest, Outcome, Surface  # Outcome: imported from here too
from .errors import OvernightError
from .files import pid_alive
from .errors import BudgetExceeded
from .objective import Objective
from .workfolder import Template




class LocalExecutor(Executor):
    """Measures in a fresh work folder on this machine (a private temporary folder)."""

    def __init__(self, surface: Surface, objective: Objective, root: Path | None = None, keep: bool = False):
        self.surface = surface
        self.objective = objective
        self.root = root
        self.keep = keep
        reads = {m.reads for m in objective.all_metrics()}
        self.writes = "folder" if "folder" in reads else "file" if "file" in reads else "nothing"
        self.metrics = list(objective.all_metrics())
        self.template: Template | None = None
        self._listing = threading.Lock()
        self.spare: list[Path] = []  # work folders kept for the next measurement (see `_release`)
        self.ahead: list[Path] = []  # fresh work folders, made while a command ran (see `_make_ahead`)
        self._ahead_lock = threading.Lock()  # guards `ahead`, `measuring` and `_generation`
        self.measuring = 0  # measurements in flight: as many folders are made ahead, at most
        self.alone = False  # set by a run with one experiment in flight (see `inline`)
        self._generation = 0  # moved by `forget_ahead`: a folder being made then is not kept
        weakref.finalize(self, _remove_all, self.ahead)

    @property
    def inline(self) -> bool:
        """Measured without a thread hop (core/measure.py): when every metric and guard answers at
        once, in-process; or, `alone` in its run, waits only on commands a stop kills. Read at each
        measurement, as a metric may find it is not instant after all."""
        return all(m.instant or (self.alone and m.waits_on_commands) for m in self.metrics)

    def measure(self, view: str, request: MeasureRequest, guards: bool = True) -> Outcome:
        folder, made = self._folder()
        artifact = None
        start = time.monotonic()
        try:
            # A copy of the recipe folder, so a metric's scripts and data sit beside the candidate
            # just as they sit beside the user's file; the user's folder itself is never touched.
            request.view = view
            if not made:
                self._make(folder)
            if self.writes == "nothing":
                artifact = folder / self.surface.source().name  # named, never written
            else:
                artifact = self.surface.materialize(view, folder)
            with process.meanwhile(self._make_ahead, sweeper.drain):
                m = finite(self.objective.measure(artifact, folder, request))
            m.seconds = m.seconds or time.monotonic() - start
            outcome = Outcome(m)
            if guards and m.ok and self.objective.guards:
                outcome.guard_problem, outcome.guard_values = self.objective.guard_problem(artifact, folder, request)
                bad = [k for k, v in outcome.guard_values.items() if v is not None and not _finite(v)]
                if bad and not outcome.guard_problem:
                    outcome.guard_problem = f"the guard {bad[0]} printed {outcome.guard_values[bad[0]]}, not a number"
            return outcome
        except BudgetExceeded:
            raise  # not the candidate's fault: the loop stops the run
        except OvernightError as exc:
            return Outcome(Measurement.crash(exc.message, seconds=time.monotonic() - start))
        except Exception as exc:  # a plugin bug: the run goes on, the trace says where
            reason = f"the metric failed: {type(exc).__name__}: {exc}"
            return Outcome(Measurement.crash(reason, traceback.format_exc(), seconds=time.monotonic() - start))
        finally:
            with self._ahead_lock:
                self.measuring -= 1
            self._release(folder, artifact)

    def _folder(self) -> tuple[Path, bool]:
        """A work folder's path and whether it is made already: a name no other measurement has, in a
        folder only this user can read (made by `_make`), one `_release` kept for the next, or one
        made ahead."""
        with self._ahead_lock:
            if self.ahead:
                self.measuring += 1
                return self.ahead.pop(0), True
        try:
            folder, made = self.spare.pop(), True
        except IndexError:
            folder, made = self._new(), False
        with self._ahead_lock:
            self.measuring += 1
        return folder, made

    def _new(self) -> Path:
        if self.root:
            self.root.mkdir(parents=True, exist_ok=True)
        return (self.root or private_root()) / f"exp-{uuid.uuid4().hex[:12]}"

    def _make(self, folder: Path) -> None:
        """Makes a work folder: a copy of the recipe folder, or an empty one for a metric that reads
        the file alone."""
        if self.writes == "folder":
            self._template().copy(folder)
        elif self.writes == "file":
            folder.mkdir(mode=0o700)

    def _make_ahead(self) -> None:
        """Makes the next measurement's work folder while a command runs (core/process.py `meanwhile`),
        off the loop's path: as fresh as one made when needed, from the recipe folder as the run
        listed it. Should the recipe folder change, the check after each measurement stops the run
        and `forget_ahead` drops these (core/measure.py)."""
        with self._ahead_lock:
            if self.keep or self.writes == "nothing" or len(self.ahead) >= self.measuring:
                return
            generation = self._generation
        folder = self._new()
        try:
            self._make(folder)
        except OSError:  # the disk is full, say: the next measurement makes its own and says why
            shutil.rmtree(folder, ignore_errors=True)
            return
        with self._ahead_lock:
            if generation == self._generation:
                self.ahead.append(folder)
                return
        sweeper.remove(folder)

    def forget_ahead(self) -> None:
        """Drops the folders made ahead (the recipe folder changed since, perhaps)."""
        with self._ahead_lock:
            self._generation += 1
            dropped, self.ahead[:] = list(self.ahead), []
        for folder in dropped:
            sweeper.remove(folder)

    def _release(self, folder: Path, artifact: Path | None) -> None:
        """Removes a finished work folder, in the background. An instant metric that reads the file
        alone and left the folder holding only the candidate, a file of its own, gets it again:
        rewriting one file costs less than making and removing a folder each time."""
        if self.keep or self.writes == "nothing":
            return
        if all(m.instant for m in self.metrics) and self.writes == "file" and artifact is not None \
                and artifact.parent == folder and _holds_only(folder, artifact.name):
            self.spare.append(folder)
        else:
            sweeper.remove(folder)

    def _template(self) -> Template:
        """The recipe folder as listed at the first measurement (core/workfolder.py)."""
        with self._listing:
            if self.template is None:
                root = self.surface.recipe_dir.resolve()
                store = {Path(f).resolve() for f in getattr(self, "own_files", ())}
                self.template = Template(root, frozenset(f.relative_to(root).as_posix() for f in store if f.is_relative_to(root)))
            return self.template


def finite(m: Measurement) -> Measurement:
    """A number is finite or it is a crash: nan, inf or an overflow (a component's too) would
    make every comparison after it wrong, and a minimize run would keep -inf."""
    if not m.ok:
        return m
    for label, value in [*((f"{k} ", v) for k, v in (m.components or {}).items()), ("", m.value)]:
        if not _finite(value):
            crash = Measurement.crash(f"the metric {label}printed {value}, not a number", m.trace,
                                      examples=m.examples, llm_calls=m.llm_calls, cost_usd=m.cost_usd, tokens=m.tokens,
                                      seconds=m.seconds)
            return crash
    return m


def _remove_all(folders: list[Path]) -> None:
    """Removes the folders an executor made ahead and never used: when it is collected, or at exit."""
    for folder in list(folders):
        shutil.rmtree(folder, ignore_errors=True)


def _holds_only(folder: Path, name: str) -> bool:
    """True when `folder` holds `name` alone, a regular file with one link (rewritten next time, it
    writes nothing else)."""
    try:
        if os.listdir(folder) != [name]:
            return False
        st = os.lstat(folder / name)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except TypeError:
        return False


_root: Path | None = None
_root_lock = threading.Lock()


def private_root() -> Path:
    """This process's folder for work folders (mode 0700), removed at exit."""
    global _root
    with _root_lock:
        if _root is None or not _root.is_dir():
            sweeper.remove(sweep_stale)  # off the first measurement's path: the temporary folder can be long to list
            _root = Path(tempfile.mkdtemp(prefix=f"overnight-work-{os.getpid()}-"))
            atexit.register(shutil.rmtree, _root, True)
        return _root


def sweep_stale(tmp: Path | None = None) -> None:
    """Removes the work folders of overnight processes that died (a SIGKILL skips atexit)."""
    for folder in (tmp or Path(tempfile.gettempdir())).glob("overnight-work-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and folder.is_dir() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


class Sweeper:
    """Removes finished work folders in the background: on some disks a removal takes longer
    than all the rest of what the loop does for an experiment. Handing one over only appends it
    to a list (waking a thread for each would cost the loop more than the removal); the thread
    looks every PERIOD seconds. Drained at exit."""

    PERIOD = 0.2

    def __init__(self) -> None:
        self.pending: list[Path] = []
        self.lock = threading.Lock()  # guards `pending` and the start of the thread
        self.busy = threading.Lock()  # held while a batch is being removed
        self.thread: threading.Thread | None = None

    def remove(self, folder: Path | Callable[[], None]) -> None:
        """Hands over a folder to remove, or other clean-up work to do in the same turn."""
        with self.lock:
            self.pending.append(folder)
            if self.thread is None:
                self.thread = threading.Thread(target=self._work, name="overnight-sweeper", daemon=True)
                self.thread.start()
                atexit.register(self.drain)

    def drain(self) -> None:
        """Returns once every folder handed over so far is gone."""
        self._sweep()

    def _work(self) -> None:
        while True:
            time.sleep(self.PERIOD)
            self._sweep()

    def _sweep(self) -> None:
        with self.busy:
            with self.lock:
                batch, self.pending = self.pending, []
            for folder in batch:
                if callable(folder):
                    folder()
                else:
                    shutil.rmtree(folder, ignore_errors=True)


sweeper = Sweeper()
