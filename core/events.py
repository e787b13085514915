"""What the loop publishes; the CLI display, the TUI and plugins (`overnight_event`) subscribe.

Each event is a small typed record; `kind` names it in a word (the same strings as the
constants below) for subscribers that would rather compare names than types. A
subscriber that raises is reported (a `Warned` event to the others, and the log) and
skipped: watching a run never stops it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

if TYPE_CHECKING:
    from .budget import Budget
    from .summary import Summary

RUN_STARTED = "run_started"
EXPERIMENT_STARTED = "experiment_started"
EXPERIMENT_FINISHED = "experiment_finished"
NEW_BEST = "new_best"
RUN_FINISHED = "run_finished"
WARNED = "warned"
NIGHT_FINISHED = "night_finished"


def _log():
    """The module's logger, made at the first warning: `logging` is not imported before a run's
    first command starts (core/ahead.py) unless something warns."""
    import logging

    log = logging.getLogger(__name__)
    if not log.handlers:
        log.addHandler(logging.NullHandler())  # a library logs; the program that runs it decides where to
    return log


@dataclass(frozen=True)
class Event:
    """What every event carries: the run it is of."""

    run_id: int
    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class Used:
    """What a run has used of its budget at one moment: a copy, safe to keep."""

    experiments: int = 0
    seconds: float = 0.0
    usd: float = 0.0
    tokens: int = 0

    @classmethod
    def of(cls, spend) -> "Used":
        return cls(spend.experiments, spend.seconds, spend.usd, spend.tokens)


@dataclass(frozen=True)
class RunStarted(Event):
    """A run started or resumed, before its baseline."""

    recipe: str
    budget: Budget
    used: Used | None = None  # what the run had used when it started (a resumed run, something)
    notify: dict = field(default_factory=dict)  # the recipe's [notify] table
    kind: ClassVar[str] = RUN_STARTED


@dataclass(frozen=True)
class ExperimentStarted(Event):
    """The agent proposed; the measurement starts."""

    seq: int
    rationale: str
    kind: ClassVar[str] = EXPERIMENT_STARTED


@dataclass(frozen=True)
class ExperimentFinished(Event):
    """Stored, and the run's best already moved when it was a keep."""

    seq: int
    status: str
    reason: str
    score: float | None
    best: float | None  # the run's best score now
    used: Used | None = None  # what the run has used so far, this experiment included
    kind: ClassVar[str] = EXPERIMENT_FINISHED


@dataclass(frozen=True)
class NewBest(Event):
    """A keep moved the run's best (published after its ExperimentFinished)."""

    seq: int
    score: float
    baseline: float | None = None
    kind: ClassVar[str] = NEW_BEST


@dataclass(frozen=True)
class RunFinished(Event):
    """The run ended, whatever ended it; its summary is stored."""

    summary: Summary
    kind: ClassVar[str] = RUN_FINISHED


@dataclass(frozen=True)
class NightFinished(Event):
    """A night of several recipes ended (`overnight night`); `run_id` is 0."""

    night: int
    digest: str
    report: str | None
    recipes: int
    kind: ClassVar[str] = NIGHT_FINISHED


@dataclass(frozen=True)
class Warned(Event):
    """Something went wrong that does not stop the run: a subscriber or the agent's `observe` failed."""

    message: str
    kind: ClassVar[str] = WARNED


Subscriber = Callable[[Event], Any]


class Events:
    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []
        self._told: set = set()  # what was warned of already: a failure once per source, not each time
        self.plugins_subscribed = False  # set once the `overnight_event` hooks are (core/runner.py)

    def subscribe(self, fn: Subscriber, name: str = "") -> None:
        """`name` says who failed when `fn` raises (a plugin's name, say)."""
        self._subscribers.append((name or getattr(fn, "__qualname__", repr(fn)), fn))

    def publish(self, event: Event) -> None:
        for name, fn in list(self._subscribers):
            try:
                fn(event)
            except Exception as exc:  # never fatal: the run goes on, and says so
                self.warn(event.run_id, f"{name} failed on the {event.kind.replace('_', ' ')} event: "
                                        f"{type(exc).__name__}: {exc}; the run goes on", exc, once=(name, event.kind), skip=fn)

    def warn(self, run_id: int, message: str, exc: BaseException | None = None, *, once=None,
             skip: Subscriber | None = None) -> None:
        """Logs `message` (with the traceback) and tells the subscribers (but `skip`); only the first
        time for the same `once`, so a plugin that fails on every experiment does not flood the screen."""
        log = _log()
        log.warning(message, exc_info=exc)
        if once is not None:
            if once in self._told:
                return
            self._told.add(once)
            message += " (further failures like this one are not shown)"
        warned = Warned(run_id, message)
        for name, fn in list(self._subscribers):
            if fn is skip:
                continue
            try:
                fn(warned)
            except Exception:  # a warning about a warning would never end: the log has it
                log.warning("%s failed on a warning", name, exc_info=True)
