"""Measuring a view: how many times, and one way to do it, for every caller.

The run's baseline, its re-measurements and confirmation, `overnight check`,
`overnight explain`, the dry run and the TUI's re-measure all measure here, through
the run's executor (core/contracts.py `Executor`), so a cluster executor changes
where measurements run for all of them at once. A budget cap reached while measuring
ends the measuring the same way everywhere: the samples so far are kept and
`Samples.capped` says why it stopped; each caller decides what that means for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from . import process
from .contracts import Executor, LLMCall, Measurement, MeasureRequest, Outcome
from .decide import noise
from .errors import BudgetExceeded, OvernightError
from .numbers import mean
from .paths import Fingerprint, TooLarge
from .secrets import scrubbed

# Seconds past its time limit before a measurement that has not come back is called a
# timeout: the metric enforces its limit itself (a subprocess is killed); this is the
# backstop for an in-process metric that ignores it.
BACKSTOP = 5.0


def repeats(objective, asked: int | None = None, *, check: bool = False) -> int:
    """How many times a view is measured, by one rule everywhere.

    What the person asked for (`overnight check -n`) first; else the recipe's `repeats`;
    else once for a deterministic metric and three times for a noisy one. A check wants
    enough samples to see the noise: at least 2 for a deterministic metric, 5 for a noisy one.
    """
    if asked:
        return asked
    least = (2 if objective.deterministic else 5) if check else 1
    return max(least, objective.repeats or (1 if objective.deterministic else 3))


@dataclass
class Samples:
    """What measuring one view N times gave, in order."""

    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "status: reason" of each that failed
    outcomes: list[Outcome] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)  # wall seconds of each, work folder included
    llm_calls: list[LLMCall] = field(default_factory=list)
    cost_usd: float = 0.0
    tokens: int = 0
    capped: BudgetExceeded | None = None  # a cap was reached while measuring this view: it stopped there

    def add(self, outcome: Outcome, seconds: float) -> None:
        m = outcome.measurement
        if m.ok:
            self.values.append(m.value)
        else:
            self.failures.append(f"{m.status}: {m.reason}")
        self.outcomes.append(outcome)
        self.durations.append(seconds)
        self.llm_calls += m.llm_calls
        self.cost_usd += m.cost_usd
        self.tokens += m.tokens

    @property
    def first(self) -> Outcome | None:
        return self.outcomes[0] if self.outcomes else None

    @property
    def last(self) -> Outcome:
        """The latest outcome; when a cap stopped the measuring, a crash that says so."""
        if self.capped is not None:
            return Outcome(Measurement.crash(self.capped.message.rstrip(".")))
        return self.outcomes[-1]

    @property
    def mean(self) -> float | None:
        return mean(self.values) if self.values else None

    @property
    def noise(self) -> float:
        return noise(self.values)


async def once(executor: Executor, view: str, request: MeasureRequest, *, guards: bool = False,
               meanwhile: tuple[Callable[[], object], ...] = ()) -> Outcome:
    """One measurement, in a worker thread so other experiments go on meanwhile (in the event loop
    itself when every metric is instant, or the run has one experiment in flight and its metrics
    wait only on commands: see `Plugin.instant` and `Plugin.waits_on_commands`); secrets masked
    here, at the source; the recipe folder and the person's file checked after it, which a metric
    may only read.

    `meanwhile` is work the measuring thread may do while a command of the measurement runs
    (core/process.py `meanwhile`); what it did not do, its caller does. Measured in the calling
    thread, it awaits nothing: core/ahead.py runs it with no event loop at all."""
    untouched = _untouched(executor)
    if getattr(executor, "inline", False):
        outcome = scrubbed(_measure(executor, meanwhile, view, request, guards))
    else:
        import asyncio  # here: measuring in the calling thread (core/ahead.py) must not wait for its import

        try:
            async with asyncio.timeout(request.seconds + BACKSTOP):  # in this task: wait_for would start one more
                outcome = scrubbed(await asyncio.to_thread(_measure, executor, meanwhile, view, request, guards))
        except TimeoutError:
            outcome = Outcome(Measurement.timeout(request.seconds))
    try:
        for fingerprint in untouched:
            fingerprint.check("the recipe's own files")
    except OvernightError:
        getattr(executor, "forget_ahead", lambda: None)()  # folders made ahead were copied from it
        raise
    return outcome


def _measure(executor: Executor, meanwhile: tuple, view: str, request: MeasureRequest, guards: bool) -> Outcome:
    with process.meanwhile(*meanwhile):
        return executor.measure(view, request, guards)


def _inside(files, folder: Path) -> frozenset[str]:
    """Of `files`, those inside `folder`, as paths relative to it."""
    root = Path(folder).resolve()
    found = [Path(f).resolve() for f in files]
    return frozenset(f.relative_to(root).as_posix() for f in found if f.is_relative_to(root))


def _untouched(executor: Executor) -> list[Fingerprint]:
    """The recipe folder and the person's file as they were before the executor's first measurement.

    A folder too large to watch is not watched: only code can write, and trust refuses such a folder."""
    if not hasattr(executor, "untouched"):
        surface, watched = getattr(executor, "surface", None), []
        try:
            if surface is not None:
                store = _inside(getattr(executor, "own_files", ()), surface.recipe_dir)
                watched.append(Fingerprint.of(surface.recipe_dir, skip=store))
                source = surface.source().resolve()
                if not source.is_relative_to(surface.recipe_dir.resolve()):
                    watched.append(Fingerprint.of(source))
        except TooLarge:
            watched = []
        executor.untouched = watched
    return executor.untouched


async def sample_each(executor: Executor, views: dict[str, str], request: MeasureRequest, times: int, *,
                      guards: bool = False, until_failure: bool = False,
                      each: Callable[[Samples], None] | None = None) -> dict[str, Samples]:
    """Measures each view `times` times, in turns, so a drift of the machine hits all alike.

    Only the first round may come from the cache: the others are fresh samples, or their
    spread would say nothing. `until_failure` stops at the first measurement that fails;
    a budget cap stops everything, and the view being measured then carries `capped`.
    `each` is called with a view's samples after each of its measurements.
    """
    found = {name: Samples() for name in views}
    for i in range(times):
        for name, view in views.items():
            s = found[name]
            started = time.monotonic()
            try:
                outcome = await once(executor, view, replace(request, cache=request.cache and i == 0), guards=guards)
            except BudgetExceeded as exc:
                s.capped = exc
                return found
            s.add(outcome, time.monotonic() - started)
            if each is not None:
                each(s)
            if until_failure and not outcome.measurement.ok:
                return found
    return found


async def sample(executor: Executor, view: str, request: MeasureRequest, times: int, **how) -> Samples:
    """Measures one view `times` times (see `sample_each` for `how`)."""
    return (await sample_each(executor, {"view": view}, request, times, **how))["view"]


def sample_now(executor: Executor, view: str, request: MeasureRequest, times: int = 1, **how) -> Samples:
    """`sample` for a caller that does not await: check, explain, the dry run, re-measure."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    go = lambda: asyncio.run(sample(executor, view, request, times, **how))  # noqa: E731
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return go()
    # Called from inside an event loop (a UI's, say), which must not be nested: a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(go).result()
