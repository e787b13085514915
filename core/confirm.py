"""Confirmation at the end of a run: measured again afresh, does the gain still hold?

A keep was decided on one or two measurements, and a lucky draw of a noisy metric
looks exactly like a real gain until it is measured again. So when a run ends, the
baseline and the best are measured again with fresh samples (no cache), in turns so
that a drift of the metric (a busy machine, a warming server) hits both alike, and
on holdout too where the metric has one. The gain holds when the confirmed gain is
beyond the same noise bar the keep rule used.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from .contracts import LLMCall, MeasureRequest
from .decide import fmt, gain, noise, threshold

Measure = Callable[[str, MeasureRequest], Awaitable]  # (view, request) -> executor Outcome


@dataclass
class Confirmation:
    baseline: float | None = None
    best: float | None = None
    holdout_baseline: float | None = None
    holdout_best: float | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    problem: str = ""  # why a figure is missing
    held: bool | None = None  # None when it could not be confirmed
    note: str = ""
    llm_calls: list[tuple[str, LLMCall]] = field(default_factory=list)  # ("baseline" | "best", call)

    def row(self) -> dict:
        """The run's columns that keep it."""
        return dict(confirmed_baseline=self.baseline, confirmed_best=self.best,
                    confirmed_holdout_baseline=self.holdout_baseline, confirmed_holdout_best=self.holdout_best,
                    confirmation=self.note, confirmed_held=None if self.held is None else int(self.held))


async def measure_again(measure: Measure, views: dict[str, str], *, times: int, seconds: float, llm=None,
                        holdout: bool = False) -> Confirmation:
    """Measures `views` ({"baseline": ..., "best": ...}) `times` times each, in turns, no cache."""
    from .llm import BudgetExceeded

    c = Confirmation()
    for split in ("train", "holdout") if holdout else ("train",):
        for i in range(times):
            for name, view in views.items():
                key = name if split == "train" else f"holdout {name}"
                try:
                    outcome = await measure(view, MeasureRequest(seconds, split=split, cache=False, llm=llm))
                except BudgetExceeded as exc:  # the run's cap holds for confirming too
                    c.problem = c.problem or f"the {key} could not be measured again ({exc.message.rstrip('.')})"
                    return _means(c)
                m = outcome.measurement
                c.llm_calls += [(name, call) for call in m.llm_calls]
                if not m.ok:
                    c.problem = c.problem or f"the {key} could not be measured again ({m.status}: {m.reason})"
                    continue
                c.samples.setdefault(key, []).append(m.value)
    return _means(c)


def _means(c: Confirmation) -> Confirmation:
    mean = lambda key: statistics.fmean(c.samples[key]) if c.samples.get(key) else None
    c.baseline, c.best = mean("baseline"), mean("best")
    c.holdout_baseline, c.holdout_best = mean("holdout baseline"), mean("holdout best")
    return c


def judge(c: Confirmation, *, reported: float, baseline: float, goal: str, run_noise: float,
          min_delta: float, k: float) -> Confirmation:
    """Sets `held` and a one-sentence `note`: the confirmed gain against the keep rule's bar."""
    if c.baseline is None:
        c.held, c.note = None, f"Not confirmed: {c.problem}."
        return c
    if c.best is None:
        c.held, c.note = False, f"The gain did not hold: {c.problem}."
        return c
    spread = [noise(c.samples["baseline"]), noise(c.samples["best"])]
    pooled = (sum(s * s for s in spread) / 2) ** 0.5
    bar = threshold(max(run_noise, pooled), min_delta, k)
    before, now = gain(reported, baseline, goal), gain(c.best, c.baseline, goal)
    times = len(c.samples["best"])
    how = f"measured again ({times} fresh sample{'s' if times > 1 else ''} each)"
    if now <= 0:
        c.held = False
        c.note = (f"The gain did not hold: {how}, the best scores {fmt(c.best)} against the baseline's "
                  f"{fmt(c.baseline)}, {'no better' if now == 0 else 'worse'} (reported gain {fmt(before)}).")
    elif now <= bar:
        c.held = False
        c.note = (f"The gain did not hold: {how}, it is {fmt(now)}, within the noise bar of {fmt(bar)} "
                  f"(reported gain {fmt(before)}).")
    else:
        c.held = True
        c.note = f"The gain held: {how}, it is {fmt(now)} (reported {fmt(before)}; noise bar {fmt(bar)})."
    if None not in (c.holdout_baseline, c.holdout_best) and gain(c.holdout_best, c.holdout_baseline, goal) <= 0:
        c.note += f" On holdout it is not better ({fmt(c.holdout_baseline)} -> {fmt(c.holdout_best)})."
    return c
