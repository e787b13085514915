"""The keep decision for one measured candidate, against the best known at that moment.

A keep must beat the best by more than the noise bar (core/decide.py), pass every
guard, and, for a noisy metric, agree when measured once more: a lucky draw is the
classic way a greedy loop ratchets on noise. On a metric with examples it must also
win on more examples than it loses against the best (a sign test at `paired_level`),
so one flipped example is not progress. A tie (same score, shorter view) is kept when
the re-measurement does not fall below the best.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from .budget import Budget
from .contracts import Outcome
from .decide import paired_verdict, threshold, ties, verdict
from .numbers import fmt, gain, mean
from .record import ExperimentRecord
from .state import RunState


class KeepRule:
    def __init__(self, budget: Budget, goal: str, deterministic: bool):
        self.budget, self.goal, self.deterministic = budget, goal, deterministic

    async def decide(self, rec: ExperimentRecord, view: str, outcome: Outcome, state: RunState,
                     again: Callable[[], Awaitable[Outcome]]) -> tuple[str, str]:
        """The status and reason of a measured candidate; `again` measures it afresh."""
        m = outcome.measurement
        rec.account(m)
        if not m.ok:
            rec.measured(m)
            return m.status, m.reason
        best, bar = state.best, threshold(state.noise, self.budget.min_delta, self.budget.k)
        v = verdict(m.value, best.score, self.goal, bar, shorter=len(view) < len(best.view))
        samples = [m.value]
        unpaired = self._unpaired(m, state) if v.keep and not v.tie else None
        if unpaired:
            rec.measured(m)
            rec.scored(samples, state.baseline.score, m.components)
            return "discard", f"{v.reason}, but {unpaired}"
        if v.keep and not self.deterministic:
            second = (await again()).measurement
            rec.account(second)
            if second.ok:
                samples.append(second.value)
            if not self._agrees(samples, best.score, bar, v.tie):
                rec.measured(m)
                rec.scored(samples, state.baseline.score)
                return "discard", f"{v.reason}, but the confirming re-measurement did not agree ({', '.join(fmt(s) for s in samples)})"
        rec.measured(m)
        rec.scored(samples, state.baseline.score, m.components)
        if v.keep and outcome.guard_problem:
            return "guard_failed", outcome.guard_problem
        return ("keep" if v.keep else "discard"), v.reason

    def _agrees(self, samples: list[float], best: float, bar: float, tie: bool = False) -> bool:
        """Both samples beat the best, and their mean by more than the bar; for a tie, neither
        sample falls below the best."""
        if tie:
            return len(samples) == 2 and all(ties(s, best) or gain(s, best, self.goal) > 0 for s in samples)
        return len(samples) == 2 and gain(samples[1], best, self.goal) > 0 and gain(mean(samples), best, self.goal) > bar

    def _unpaired(self, m, state: RunState) -> str | None:
        """Why a win on a metric with examples is not one example by example (None when it is)."""
        scores = {e.id: e.score for e in m.examples if e.split == "train"}
        if not scores or not state.best.scores:
            return None
        return paired_verdict(scores, state.best.scores, self.goal, self.budget.paired_level)
