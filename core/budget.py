"""The budget of a run and what has been spent against it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields

from .contracts import FAILURES
from .options import Option

SCHEMA = {
    "experiments": Option(int, "at most this many experiments", default=100, min=0),
    "minutes": Option(float, "total wall time in minutes", default=None, min=0),
    "usd": Option(float, "spend cap for all LLM calls; 0 = none allowed", default=0.0, min=0),
    "tokens": Option(int, "cap on LLM tokens", default=None, min=0),
    # At most a week: a far longer limit overflows the operating system's waits (about 24 days).
    "per_experiment_seconds": Option(float, "time limit of one measurement", default=60.0, min=0.001, max=604800),
    "parallel": Option(int, "experiments in flight", default=1, min=1, max=256),
    "patience": Option(int, "stop after this many experiments without a keep", default=None, min=1),
    "target": Option(float, "stop once the best score reaches this", default=None),
    "max_failures": Option(int, "stop after this many crashes, timeouts or invalid proposals in a row", default=10, min=1),
    "llm_concurrency": Option(int, "LLM calls in flight at once", default=8, min=1),
    "min_delta": Option(float, "smallest gain worth keeping", default=0.0, min=0),
    "k": Option(float, "a keep must beat the best by k times the noise", default=2.0, min=0),
    "paired_level": Option(float, "a metric with examples: a keep must win on more examples than it loses against "
                                  "the best, at this sign-test level (1, the default: only more wins than losses)", default=1.0,
                           min=0.0001, max=1),
}


@dataclass(frozen=True)
class Budget:
    """The [budget] section: the limits of a run and the keep rule's bar."""

    experiments: int | None = 100
    minutes: float | None = None
    usd: float = 0.0
    tokens: int | None = None
    per_experiment_seconds: float = 60.0
    parallel: int = 1
    patience: int | None = None
    target: float | None = None
    max_failures: int = 10
    llm_concurrency: int = 8
    min_delta: float = 0.0
    k: float = 2.0
    paired_level: float = 1.0

    @classmethod
    def from_values(cls, values: dict) -> "Budget":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})


@dataclass
class Spend:
    """Running totals; shared by the loop and the LLM gateway, hence the lock."""

    experiments: int = 0
    usd: float = 0.0
    tokens: int = 0
    seconds_before: float = 0.0  # wall time spent by earlier sessions of a resumed run
    started: float = field(default_factory=time.monotonic)
    failures_in_a_row: int = 0
    since_keep: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, usd: float = 0.0, tokens: int = 0) -> None:
        with self.lock:
            self.usd += usd
            self.tokens += tokens

    def count(self, status: str) -> None:
        """Counts one finished experiment (not an interrupted one: it runs again on resume)."""
        self.experiments += 1
        self.since_keep = 0 if status == "keep" else self.since_keep + 1
        self.failures_in_a_row = self.failures_in_a_row + 1 if status in FAILURES else 0

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def left(self, budget: Budget) -> dict[str, float]:
        left = {"usd": max(0.0, budget.usd - self.usd)}
        if budget.experiments is not None:
            left["experiments"] = max(0, budget.experiments - self.experiments)
        if budget.minutes is not None:
            left["minutes"] = max(0.0, budget.minutes - self.seconds / 60)
        if budget.tokens is not None:
            left["tokens"] = max(0, budget.tokens - self.tokens)
        return left

    def exhausted(self, budget: Budget, in_flight: int = 0) -> str | None:
        """Why no further experiment may start, or None."""
        if budget.experiments is not None and self.experiments + in_flight >= budget.experiments:
            return f"experiment budget reached ({budget.experiments})"
        if budget.minutes is not None and self.seconds >= budget.minutes * 60:
            return f"time budget reached ({budget.minutes:g} min)"
        if budget.usd and self.usd >= budget.usd:
            return f"spend cap reached (${budget.usd:g})"
        if budget.tokens is not None and self.tokens >= budget.tokens:
            return f"token cap reached ({budget.tokens})"
        if budget.patience is not None and self.since_keep >= budget.patience:
            return f"no keep in {budget.patience} experiments (patience)"
        if self.failures_in_a_row >= budget.max_failures:
            return f"{self.failures_in_a_row} failures in a row (max_failures)"
        return None
