"""The end of a run: the holdout figures, then confirmation: measured again afresh, does the gain hold?

A keep was decided on one or two measurements, and a lucky draw of a noisy metric
looks exactly like a real gain until it is measured again. So when a run ends, the
baseline and the best are measured again with fresh samples (no cache), in turns so
that a drift of the metric (a busy machine, a warming server) hits both alike, and
on holdout too where the metric has one. The gain holds when the confirmed gain is
beyond the same noise bar the keep rule used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .contracts import Executor, LLMCall, MeasureRequest
from .decide import noise, threshold
from .numbers import fmt, gain, mean
from .measure import once, repeats, sample_each
from .state import RunState


@dataclass
class Confirmation:
    """The figures measured again as the run ends, and why one is missing."""

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


class Ending:
    """The end of a run that ran its course: the holdout figures, then the confirmation."""

    def __init__(self, setup, run_id: int, state: RunState):
        self.s, self.store, self.run_id, self.state = setup, setup.store, run_id, state

    def request(self, **how) -> MeasureRequest:
        return MeasureRequest(self.s.budget.per_experiment_seconds, **how)

    async def holdout(self) -> None:
        """The baseline and the best on the holdout examples, which the agent never saw."""
        state, figures = self.state, {}
        for name, best in (("baseline", state.baseline), ("best", state.best)):
            if name == "best" and best.exp_id == state.baseline.exp_id:
                figures["best"] = figures["baseline"]
                continue
            m = (await once(self.s.executor, best.view, self.request(split="holdout"))).measurement
            for call in m.llm_calls:
                self.store.record_llm_call(call, run_id=self.run_id, experiment_id=best.exp_id)
            figures[name] = m.value if m.ok else None
            self.store.update_experiment(best.exp_id, examples=[e for e in m.examples if e.split == "holdout"], holdout_score=figures[name])
        self.store.update_run(self.run_id, holdout_baseline=figures["baseline"], holdout_best=figures["best"])

    async def confirm(self) -> None:
        """Measures the baseline and the best again afresh: a lucky keep shows here, not in the morning."""
        state, objective, budget = self.state, self.s.objective, self.s.budget
        if state.best is None or state.best.exp_id == state.baseline.exp_id:
            return  # nothing was kept: no gain to confirm
        c = await measure_again(self.s.executor, {"baseline": state.baseline.view, "best": state.best.view},
                                times=repeats(objective), request=self.request(), holdout=objective.has_examples)
        for name, call in c.llm_calls:
            self.store.record_llm_call(call, run_id=self.run_id, experiment_id=getattr(state, name).exp_id)
        conclude(c, reported=state.best.score, baseline=state.baseline.score, goal=objective.goal,
                 run_noise=state.noise, min_delta=budget.min_delta, k=budget.k)
        self.store.update_run(self.run_id, **c.row())


async def measure_again(executor: Executor, views: dict[str, str], *, times: int, request: MeasureRequest,
                        holdout: bool = False) -> Confirmation:
    """Measures `views` ({"baseline": ..., "best": ...}) `times` times each, in turns, no cache."""
    c = Confirmation()
    for split in ("train", "holdout") if holdout else ("train",):
        found = await sample_each(executor, views, replace(request, split=split, cache=False), times)
        for name, s in found.items():
            key = name if split == "train" else f"holdout {name}"
            c.llm_calls += [(name, call) for call in s.llm_calls]
            if s.values:
                c.samples[key] = s.values
            if s.failures or s.capped:
                why = s.capped.message.rstrip(".") if s.capped else s.failures[0]
                c.problem = c.problem or f"the {key} could not be measured again ({why})"
        if any(s.capped for s in found.values()):  # the run's cap holds for confirming too
            break
    return _means(c)


def _means(c: Confirmation) -> Confirmation:
    of = lambda key: mean(c.samples[key]) if c.samples.get(key) else None
    c.baseline, c.best = of("baseline"), of("best")
    c.holdout_baseline, c.holdout_best = of("holdout baseline"), of("holdout best")
    return c


def conclude(c: Confirmation, *, reported: float, baseline: float, goal: str, run_noise: float,
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
