"""The baseline, measured as `overnight run` starts: its first command runs while the rest of the
run (the event loop, the loop itself, its store rows) is still being imported and made, which
hides some tens of milliseconds of start-up behind the first measurement.

Only where the loop would measure the baseline in its own thread anyway, one measurement after
another (LocalExecutor.inline: metrics that wait only on commands, or are instant, one
experiment in flight), so that measuring it here, in a thread of its own, is the same
measurement: `sample` awaits nothing then, and runs with no event loop. The loop takes the
samples where it would have made them (Loop._baseline). Until the loop listens for Ctrl-C and
SIGTERM, they are heard here: the command is killed, and the loop, as it starts, stops the run
for that reason (core/runner.py), which leaves it to resume as a stop during the baseline does.
"""

from __future__ import annotations

import signal
import threading

from . import process
from .contracts import MeasureRequest
from .measure import Samples, repeats, sample


def plan(setup) -> tuple[MeasureRequest, int]:
    """How a run's baseline is measured, here or in the loop: with its guards, `repeats` times,
    until one measurement fails."""
    return MeasureRequest(setup.budget.per_experiment_seconds), repeats(setup.objective)


class Baseline:
    """The samples of a baseline being measured in a thread of its own."""

    def __init__(self, setup):
        self.view = setup.surface.read()
        self.stopped = ""  # the reason a signal gave before the loop was listening
        self.started = threading.Event()
        self._found: Samples | None = None
        self._error: BaseException | None = None
        request, times = plan(setup)
        run = sample(setup.executor, self.view, request, times, guards=True, until_failure=True)
        self._thread = threading.Thread(target=self._measure, args=(run,), name="overnight-baseline", daemon=True)

    def _measure(self, run) -> None:
        try:
            with process.meanwhile(self.started.set):  # right after its first command starts
                run.send(None)  # every measurement inline: the coroutine never waits, so this ends it
        except StopIteration as done:
            self._found = done.value
        except BaseException as exc:  # raised to the loop, where measuring it there would have raised it
            self._error = exc
        else:
            run.close()
            self._error = RuntimeError("the baseline's measurement waited on an event loop")
        finally:
            self.started.set()  # no command, or one that ended at once

    def begin(self) -> None:
        """Starts the thread and returns once its first command runs. Until then the thread has the
        interpreter to itself: each of its file operations would otherwise wait for the imports in
        this thread to let go of it, up to 5 ms a time."""
        self._thread.start()
        self.started.wait()

    def result(self) -> Samples:
        """Waits for the samples (a stop kills the command, so this returns soon after one)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found

    def interrupt(self, reason: str) -> None:
        """A signal before the loop listens: the command is killed now, the run stopped as it starts."""
        self.stopped = self.stopped or reason
        process.kill_all()


def start(setup) -> Baseline | None:
    """Starts measuring the baseline of a new run, when the loop would measure it in its own
    thread and no model is called (whose calls the store records, from the loop's thread); else
    None, and the loop measures it. Called from the main thread, it takes Ctrl-C and SIGTERM
    until the loop does."""
    if not getattr(setup.executor, "inline", False) or setup.llm is not None:  # a model's calls go to the store
        return None
    ahead = Baseline(setup)
    if threading.current_thread() is threading.main_thread():
        for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
            signal.signal(sig, lambda *_, reason=f"interrupted by {name}": ahead.interrupt(reason))
    ahead.begin()
    return ahead
