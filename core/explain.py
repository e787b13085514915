"""`overnight explain`: what each kept change of a run still contributes at the end.

Kept changes stack up, and each was judged against the best of its moment: once
later changes are in, an early one may do nothing at all. So for each change on
the chain from the baseline to the best (following the experiments' parent links),
the best is measured with that change left out: the lines it changed are put back
as they were before it (line-based, with difflib), where no later change has
rewritten them; otherwise the change is skipped with that reason. Its contribution
is the best's score minus the score without it, in the goal's direction; within
the keep rule's noise bar it contributes nothing and can be dropped.

A surface with typed parameters (cells of a workbook, keys of a settings file) is mostly
changed by a search that rewrites every value at each step, so its steps rarely come
apart. There, each value that differs from the baseline's is also put back on its
own: what that one value contributes to the best.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from .contracts import MeasureRequest
from .decide import noise, threshold
from .numbers import fmt, gain, mean
from .errors import OvernightError
from .linediff import opcodes
from .measure import repeats, sample_now


@dataclass
class Change:
    """One kept step: the view before it (its parent) and after it, read from the store when
    asked, a few at a time: fifty steps of a file of megabytes held at once would be gigabytes."""

    seq: int
    experiment_id: int
    rationale: str
    gain: float | None  # over its parent, in the goal's direction, when it was made
    before_digest: str
    after_digest: str
    views: Callable[[str], str]

    @property
    def before(self) -> str:
        return self.views(self.before_digest)

    @property
    def after(self) -> str:
        return self.views(self.after_digest)


@dataclass
class Row:
    """One kept change left out; or, with `seq` None, one changed value of the surface put back."""

    seq: int | None
    experiment_id: int | None
    rationale: str
    gain: float | None
    score_without: float | None = None
    contribution: float | None = None
    bar: float = 0.0
    best_score: float | None = None
    status: str = "measured"  # measured, skipped, or essential (the best fails without it)
    reason: str = ""

    @property
    def verdict(self) -> str:
        """A few words for people: does this change still matter?"""
        if self.status != "measured":
            return self.reason
        if self.contribution is None:
            return ""
        if self.contribution < -self.bar:
            return "harmful: the best scores better without it; drop it"
        if self.contribution <= self.bar:
            return "no contribution: drop it"
        return ""


def chain(store, run: dict) -> list[Change]:
    """The kept changes from the baseline to the run's best, oldest first."""
    goal = run["goal"] or "maximize"
    best = store.experiment(run["best_experiment"]) if run["best_experiment"] else None
    steps, seen = [], set()
    exp = best
    while exp is not None and exp["status"] != "baseline":
        parent = store.experiment(exp["parent"]) if exp["parent"] else None
        if parent is None:
            raise OvernightError(f"Experiment {exp['seq']} of run {run['id']} has no parent in the store, so its change cannot be traced back to the baseline.")
        if exp["id"] in seen or parent["run_id"] != run["id"]:  # a store edited by hand: the walk would never end
            raise OvernightError(f"The parents of experiment {best['seq']} of run {run['id']} do not lead back to the run's "
                                 "baseline, so its changes cannot be told apart; nothing was measured.")
        seen.add(exp["id"])
        steps.append((exp, parent))
        exp = parent
    changes = []
    views = functools.lru_cache(maxsize=3)(store.candidate)  # a step's after is the next one's before
    for exp, parent in reversed(steps):
        for e in (parent, exp):  # every view is there before anything is measured
            if not (e["candidate"] and store.has_candidate(e["candidate"])):
                raise OvernightError(
                    f"The candidate of experiment {e['seq']} of run {run['id']} is missing from the store {store.path}, "
                    "so its change cannot be left out; nothing was measured.")
        made = gain(exp["score"], parent["score"], goal) if None not in (exp["score"], parent["score"]) else None
        changes.append(Change(exp["seq"], exp["id"], exp["rationale"] or "", made, parent["candidate"], exp["candidate"], views))
    return changes


def revert(before: str, after: str, best: str) -> str | None:
    """`best` with the lines that `before -> after` changed put back as they were; None when a later change rewrote them."""
    old, new, now = (v.splitlines(keepends=True) for v in (before, after, best))
    kept: dict[int, int] = {}  # line of `after` -> the same, unchanged line of `best`
    for tag, i1, i2, j1, _ in opcodes(new, now, autojunk=False):
        if tag == "equal":
            kept.update((i1 + n, j1 + n) for n in range(i2 - i1))
    out = list(now)
    hunks = [op for op in opcodes(old, new, autojunk=False) if op[0] != "equal"]
    for _, i1, i2, j1, j2 in reversed(hunks):
        span = _where(kept, j1, j2, len(new))
        if span is None:
            return None
        out[span[0]:span[1]] = old[i1:i2]
    return "".join(out)


def _where(kept: dict[int, int], j1: int, j2: int, size: int) -> tuple[int, int] | None:
    """Where lines j1..j2 of the changed view sit in the best, if they are still there, together."""
    if j2 > j1:
        lines = range(j1, j2)
        if any(j not in kept or kept[j] != kept[j1] + (j - j1) for j in lines):
            return None
        return kept[j1], kept[j2 - 1] + 1
    # The change only removed lines: put them back after the line that preceded them.
    if j1 > 0:
        return (kept[j1 - 1] + 1,) * 2 if j1 - 1 in kept else None
    if j1 < size:
        return (kept[j1],) * 2 if j1 in kept else None
    return 0, 0


@dataclass
class Explanation:
    run_id: int
    goal: str
    best_score: float | None
    bar: float
    rows: list[Row]


def explain(setup, store, run: dict, say: Callable[[str], None] = lambda line: None) -> Explanation:
    """Measures the best, then the best without each kept change; stores and returns the rows."""
    changes = chain(store, run)
    goal = setup.objective.goal
    if not changes:
        return Explanation(run["id"], goal, run["best_score"], 0.0, [])
    best = changes[-1].after
    say(f"Measuring the best again, then without each of its {len(changes)} kept change{'s' if len(changes) > 1 else ''}...")
    without = _Without(setup, run, best, say)
    rows = [without.change(c) for c in changes]
    # A search rewrites every value at each step, so steps rarely come apart; values do.
    rows += [without.value(name, view) for name, view in _values_put_back(setup.surface, changes[0].before, best).items()]
    store.save_contributions(run["id"], [_stored(r) for r in rows])
    return Explanation(run["id"], goal, without.best_score, without.bar, rows)


class _Without:
    """The best measured again, then with one kept change left out, or one value put back, at a time."""

    def __init__(self, setup, run: dict, best: str, say: Callable[[str], None]):
        self.setup, self.best, self.say = setup, best, say
        reference, problem = self.measure(best)
        if not reference:
            raise OvernightError(f"The best of run {run['id']} cannot be measured any more ({problem}); nothing can be explained.")
        self.best_score = mean(reference)
        self.bar = threshold(max(run["noise"] or 0.0, noise(reference)), setup.budget.min_delta, setup.budget.k)
        say(f"  best: {fmt(self.best_score)}")

    def measure(self, view: str) -> tuple[list[float], str]:
        """The samples of a view, and why the last one that failed did."""
        setup, objective = self.setup, self.setup.objective
        request = MeasureRequest(setup.budget.per_experiment_seconds, cache=objective.deterministic)
        found = sample_now(setup.executor, view, request, repeats(objective))
        if found.capped:
            raise found.capped  # the recipe's cap holds here too: nothing more is measured
        return found.values, found.failures[-1] if found.failures else ""

    def change(self, change: Change) -> Row:
        surface, objective = self.setup.surface, self.setup.objective
        row = Row(change.seq, change.experiment_id, change.rationale, change.gain, bar=self.bar, best_score=self.best_score)
        without = revert(change.before, change.after, self.best)
        if without is None:
            unit = getattr(surface, "unit", "lines")  # a surface says what its view is made of ("cells")
            row.status, row.reason = "skipped", f"a later change rewrote its {unit}: it cannot be left out alone"
        elif surface.problems(without, self.best):
            row.status, row.reason = "skipped", "the best without it is refused by the surface: " + "; ".join(surface.problems(without, self.best))
        elif objective.screen(without):
            row.status, row.reason = "skipped", f"the best without it is refused before measuring ({objective.screen(without)})"
        else:
            self._score(row, without, "without it the best fails to measure")
        self.say(f"  without #{change.seq}: {fmt(row.score_without) if row.score_without is not None else row.status}")
        return row

    def value(self, name: str, view: str) -> Row:
        row = Row(None, None, name, None, bar=self.bar, best_score=self.best_score)
        self._score(row, view, "with it put back the best fails to measure")
        self.say(f"  {name}: {fmt(row.score_without) if row.score_without is not None else row.status}")
        return row

    def _score(self, row: Row, view: str, fails: str) -> None:
        samples, problem = self.measure(view)
        if not samples:
            row.status, row.reason = "essential", f"essential: {fails} ({problem})"
            return
        row.score_without = mean(samples)
        row.contribution = gain(self.best_score, row.score_without, self.setup.objective.goal)


def _values_put_back(surface, baseline: str, best: str, limit: int = 20) -> dict[str, str]:
    """For a surface with typed parameters: the best with each changed value put back as in the baseline."""
    if not surface.parameters():
        return {}
    try:
        before, after = surface.values_of(baseline), surface.values_of(best)
        changed = [name for name in after if name in before and before[name] != after[name]][:limit]
        return {f"{name}: {fmt_value(before[name])} -> {fmt_value(after[name])}, put back": surface.view_from({name: before[name]}, best)
                for name in changed}
    except (NotImplementedError, OvernightError):
        return {}


def fmt_value(value) -> str:
    return fmt(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _stored(row: Row) -> dict:
    return dict(experiment_id=row.experiment_id, seq=row.seq, rationale=row.rationale, gain=row.gain,
                best_score=row.best_score, score_without=row.score_without, contribution=row.contribution,
                bar=row.bar, status=row.status, reason=row.reason)


def stored(store, run_id: int) -> list[Row]:
    """What the latest `overnight explain` of a run found, without measuring again (for the TUI)."""
    return [Row(r["seq"], r["experiment_id"], r["rationale"] or "", r["gain"], r["score_without"], r["contribution"],
                r["bar"] or 0.0, r["best_score"], r["status"], r["reason"] or "") for r in store.contributions(run_id)]
