"""`overnight check`: can a recipe's metric be trusted before a run spends on it?

No agent is called. The baseline is measured several times (its noise, and so the
smallest gain the keep rule can see); then views that should score badly are
measured, and a metric that the keep rule would let one of them win with is
gameable: an unattended run would find that hole before it finds a real gain. A
degenerate view wins when it scores better than the baseline, or as well (within the
noise) while being shorter, since simplicity wins ties; a longer view that only ties
is reported but harmless.

The degenerate views. For a surface whose view is free text (one without typed
parameters) three come for free: the empty view, the baseline with its second half
removed, and the baseline repeated twice (padding). A view the surface itself
refuses (`problems()`) is reported as refused, which is safe. `Surface.degenerate()`
adds views or replaces these by name (a surface with a marked region empties the
region, not the file), and `Metric.degenerate()` adds the metric's own (a metric
with examples: a view made only of the expected answers).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Callable

from .contracts import MeasureRequest, Outcome
from .decide import threshold, ties
from .numbers import fmt, gain
from .measure import Samples, repeats, sample_now

EMPTY, HALF, DOUBLED = "empty", "first half only", "repeated twice"
TRACE_LINES = 15  # of a crash, shown when the baseline cannot be measured
EXIT_CODES = {"ready": 0, "risky": 1, "broken": 2}
# How much of the baseline the keep rule's bar may be before small real gains drown in it.
NOISY_SHARE = 0.05


@dataclass
class Probe:
    """One degenerate view and what the metric made of it."""

    name: str
    verdict: str  # "gameable", "same", "worse", "refused", "failed"
    value: float | None = None
    note: str = ""


@dataclass
class Report:
    recipe: str
    digest: str
    goal: str
    deterministic: bool
    verdict: str = "ready"
    samples: list[float] = field(default_factory=list)
    mean: float | None = None
    noise: float = 0.0
    bar: float | None = None
    seconds: float | None = None  # per measurement
    usd: float = 0.0
    tokens: int = 0
    projection: dict = field(default_factory=dict)
    probes: list[Probe] = field(default_factory=list)
    examples: dict[str, int] = field(default_factory=dict)  # split -> count
    problems: list[str] = field(default_factory=list)  # what makes it risky or broken
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a risk
    crash: str = ""  # the last lines of the baseline's crash, when broken
    spent_usd: float = 0.0
    measurements: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict:
        return asdict(self)

    def flag(self, problem: str, advice: str = "") -> None:
        self.problems.append(problem)
        if advice and advice not in self.advice:
            self.advice.append(advice)
        if self.verdict == "ready":
            self.verdict = "risky"


def degenerate_views(surface, metrics, base: str) -> dict[str, str]:
    """Views that should score badly, by name; the baseline itself is never one of them."""
    views: dict[str, str] = {}
    if not surface.parameters():  # a free-text view: cutting and padding it makes sense
        lines = base.splitlines(keepends=True)
        half = "".join(lines[: len(lines) // 2]) if len(lines) > 1 else base[: len(base) // 2]
        glue = "" if base.endswith("\n") or not base else "\n"
        views = {EMPTY: "", HALF: half, DOUBLED: base + glue + base}
    views.update(surface.degenerate(base))
    for metric in metrics:
        views.update(metric.degenerate(base))
    return {name: view for name, view in views.items() if view != base}


def audit(setup, asked: int | None = None, say: Callable[[str], None] = lambda line: None) -> Report:
    """Measures the baseline and the degenerate views of a built recipe (core.setup.build);
    `asked`: how many times to measure the baseline (`overnight check -n`)."""
    recipe, objective = setup.recipe, setup.objective
    report = Report(recipe.name, recipe.digest, objective.goal, objective.deterministic)
    base, spent_before = setup.surface.read(), setup.spend.usd
    measure = partial(_measure, setup, report)
    first = _baseline(report, setup, base, measure, repeats(objective, asked, check=True), say)
    if first is not None:
        # The train figures came with the baseline; holdout is measured once.
        if objective.has_examples:
            _assess_examples(report, first.measurement, base, measure)
        _probes(report, setup, base, measure, say)
        _project(report, setup.budget, objective)
    report.spent_usd = setup.spend.usd - spent_before
    _assess_answers(report, setup.llm)
    return report


def _assess_answers(report: Report, llm) -> None:
    """Empty answers cut at max_tokens are the cause to name, not the metric (a reasoning model thinks first)."""
    with getattr(llm, "lock", None) or _nothing():
        cut = dict(getattr(llm, "cut_empty", None) or {})
    for (role, model), n in sorted(cut.items()):
        where = "[agent]" if role == "agent" else "[metric]"
        report.flag(f"{n} answers of {model} came back empty, cut off at max_tokens (it spent them thinking).",
                    f"Raise max_tokens in {where} (a model that reasons needs thousands).")
        report.problems.insert(0, report.problems.pop())  # the cause first, before what it made the metric look like


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def _measure(setup, report: Report, view: str, times: int = 1, *, cache: bool = True, split: str = "train", **how) -> Samples:
    request = MeasureRequest(setup.budget.per_experiment_seconds, split=split, cache=cache)
    found = sample_now(setup.executor, view, request, times, **how)
    report.measurements += len(found.outcomes) + (found.capped is not None)
    return found


def _baseline(report: Report, setup, base: str, measure, times: int, say) -> Outcome | None:
    """The baseline, several times: its noise, and what a measurement costs; None when it is broken."""
    objective, budget = setup.objective, setup.budget
    say(f"Measuring the baseline {times} time{'s' if times > 1 else ''}...")
    found = measure(base, times, cache=False, guards=True, until_failure=True, each=partial(_said, say))
    if found.capped or found.failures:  # a cap reached holds for the check too: it says so, as a crash
        _broken(report, found.last.measurement, budget)
        return None
    report.samples = found.values
    report.mean, report.noise = found.mean, found.noise
    report.bar = threshold(report.noise, budget.min_delta, budget.k)
    report.seconds = statistics.fmean(found.durations)
    report.usd = statistics.fmean(o.measurement.cost_usd for o in found.outcomes)
    report.tokens = round(statistics.fmean(o.measurement.tokens for o in found.outcomes))
    _assess_noise(report, objective, budget, max(found.durations))
    if found.first.guard_problem:
        # Often on purpose (the guard is what the run must fix), so a note, not a risk.
        report.notes.append(f"The baseline fails a guard ({found.first.guard_problem}): only candidates that fix that can be kept.")
    refused = objective.screen(base)
    if refused:
        report.flag(f"The baseline itself is refused by the metric's screen ({refused}).",
                    "Remove the copied examples from the file: every candidate that keeps them will be refused.")
    return found.first


def _said(say, found: Samples) -> None:
    m = found.outcomes[-1].measurement
    if m.ok:
        say(f"  {fmt(m.value)}  ({found.durations[-1]:.2f} s{f', ${m.cost_usd:.4f}' if m.cost_usd else ''})")


def _probes(report: Report, setup, base: str, measure, say) -> None:
    """Views that should score badly: one the keep rule would let win makes the metric gameable."""
    views = degenerate_views(setup.surface, setup.objective.all_metrics(), base)
    if views:
        say(f"Measuring {len(views)} degenerate view{'s' if len(views) > 1 else ''} ({', '.join(views)})...")
    for name, view in views.items():
        probe = _probe(name, view, base, report, setup.surface, setup.objective, measure)
        report.probes.append(probe)
        say(f"  {name}: {fmt(probe.value) if probe.value is not None else probe.verdict}")
        if probe.verdict == "gameable":
            report.flag(f"The metric is gameable: the '{name}' view {probe.note}.", _advice_for(name, report, probe))


def _broken(report: Report, m, budget) -> Report:
    report.verdict = "broken"
    report.problems.append(f"The baseline could not be measured ({m.status}): {m.reason}.")
    report.crash = "\n".join(m.trace.splitlines()[-TRACE_LINES:])
    if m.status == "timeout":
        report.advice.append(f"Raise per_experiment_seconds in [budget] (now {fmt(budget.per_experiment_seconds)} s), "
                             "or make one measurement faster.")
    elif report.crash:
        report.advice.append("Make the metric measure the unchanged file first: the lines above are the end of its output.")
    else:
        report.advice.append("Fix what it says, then check again.")
    return report


def _assess_noise(report: Report, objective, budget, slowest: float) -> None:
    distinct = len({round(v, 12) for v in report.samples}) > 1
    if objective.deterministic and distinct:
        report.flag(
            f"The metric says it is deterministic, but the same file scored {', '.join(fmt(v) for v in report.samples)}.",
            "Set deterministic = false in [metric] (each keep is then confirmed by a second measurement), "
            "or make it deterministic: fix its seed, pin temperature = 0 for a model.")
    if not objective.deterministic:
        if report.noise and report.mean and report.bar / abs(report.mean) > NOISY_SHARE:
            steadier = ("Pin temperature = 0 for the model the metric calls, or use more examples, so one measurement varies less."
                        if any(m.uses_llm for m in objective.all_metrics()) else
                        "Make one measurement steadier: repeat the work inside the metric and report the median.")
            report.flag(
                f"The metric is noisy: a change must gain more than {fmt(report.bar)} "
                f"({report.bar / abs(report.mean):.0%} of the baseline) before the keep rule sees it.", steadier)
        if report.noise and repeats(objective) < len(report.samples):
            report.advice.append(f"Set repeats = {len(report.samples)} in [metric] (now {repeats(objective)}) "
                                 "so the run's noise floor is as firm as this check's.")
        if report.noise and budget.k == 0:
            report.flag("k = 0 in [budget]: any gain, however small against the noise, is kept.",
                        "Set k = 2 in [budget] (a keep must beat the best by twice the noise).")
    if slowest > 0.5 * budget.per_experiment_seconds:
        report.flag(
            f"One measurement took {slowest:.1f} s of the {fmt(budget.per_experiment_seconds)} s limit: slower candidates will time out.",
            "Raise per_experiment_seconds in [budget].")


def _assess_examples(report: Report, m, base: str, measure) -> None:
    train = [e for e in m.examples if e.split == "train"]
    report.examples["train"] = len(train)
    if train and all(e.score >= 1.0 for e in train):
        report.flag(f"The baseline already scores all {len(train)} train examples perfectly: there is nothing left to gain.",
                    "Add harder examples.")
    m = measure(base, split="holdout").last.measurement
    held = [e for e in m.examples if e.split == "holdout"]
    report.examples["holdout"] = len(held)
    advice = "Add holdout examples (a holdout share or file in [metric]), so the end of the run can confirm the gain on them."
    if not m.ok:
        report.flag(f"Measuring the baseline on holdout failed ({m.status}: {m.reason}): the gain cannot be checked "
                    "on examples the agent never saw.", advice)
    elif not held:
        report.flag("There are no holdout examples: a gain cannot be checked on examples the agent never saw.", advice)


def _probe(name: str, view: str, base: str, report: Report, surface, objective, measure) -> Probe:
    problems = surface.problems(view, base)
    if problems:
        return Probe(name, "refused", note="is refused by the surface (" + "; ".join(problems) + ")")
    refused = objective.screen(view)
    if refused:
        return Probe(name, "refused", note=f"is refused before measuring ({refused})")
    outcome = measure(view, guards=True).last
    m = outcome.measurement
    if not m.ok:
        return Probe(name, "failed", note=f"fails to measure ({m.status}), so it cannot win")
    if outcome.guard_problem:
        return Probe(name, "refused", m.value, f"scores {fmt(m.value)} but a guard refuses it ({outcome.guard_problem})")
    g = gain(m.value, report.mean, report.goal)
    same = ties(m.value, report.mean) or abs(g) <= report.noise
    if g > 0 and not same:
        return Probe(name, "gameable", m.value, f"scores {fmt(m.value)}, better than the baseline ({fmt(report.mean)})")
    if same and len(view) < len(base):
        why = " (only because the baseline scores 0 too)" if report.mean == 0 else ""
        return Probe(name, "gameable", m.value, f"scores {fmt(m.value)}, as well as the baseline ({fmt(report.mean)}), "
                                                f"and a shorter view wins a tie{why}")
    if same:
        return Probe(name, "same", m.value, f"scores {fmt(m.value)}, as well as the baseline; harmless, "
                                            "as a longer view never wins a tie")
    return Probe(name, "worse", m.value, f"scores {fmt(m.value)}, worse than the baseline, as it should")


def _advice_for(name: str, report: Report | None = None, probe: Probe | None = None) -> str:
    """Advice that follows from the figures the check prints (the baseline's score, the examples it counted)."""
    if report is not None and report.mean == 0 and probe is not None and probe.value == 0:
        return ("The baseline scores 0, so any shorter view that also scores 0 ties it and is kept: first make the "
                "baseline score above 0 (does the metric read the file, do the examples match the task?), then check again.")
    held = (report.examples.get("holdout") or 0) if report is not None else 0
    if name not in (EMPTY, DOUBLED, HALF) and held:
        return (f"The '{name}' view should never score as well as your file: add a [[guards]] against it "
                f"(the {held} holdout examples only confirm a gain at the end; they do not stop this one being kept).")
    if name == EMPTY:
        return ("An empty file should never win: add a [[guards]] that fails on it "
                "(a test that must pass, a minimum length).")
    if name == DOUBLED:
        return "The metric rewards length: add a [[guards]] with a max on the length, or score per unit of length."
    if name == HALF:
        return ("Cutting half the file does not hurt the score: add a [[guards]] for what that half must keep, "
                "or a metric that sees it.")
    return f"The '{name}' view should never score as well as your file: add a [[guards]] against it, or examples the agent never sees (holdout)."


def _project(report: Report, budget, objective) -> None:
    """What the whole budget would take in measurement alone (the agent's own time and cost come on top)."""
    per = report.seconds or 0.0
    noisy = not objective.deterministic
    # A noisy metric measures each promising candidate twice; about one in four, say.
    factor = 1.25 if noisy else 1.0
    experiments = budget.experiments
    if experiments is None and budget.minutes is not None and per:
        experiments = int(budget.minutes * 60 * budget.parallel / (per * factor))
    proj: dict = {"experiments": experiments}
    if experiments is not None:
        measurements = experiments * factor + repeats(objective) + 2
        seconds = measurements * per / budget.parallel
        if budget.minutes is not None:
            seconds = min(seconds, budget.minutes * 60)
        proj.update(measurements=round(measurements), seconds=seconds, usd=measurements * report.usd,
                    tokens=round(measurements * report.tokens))
        if budget.usd and proj["usd"] > budget.usd and report.usd:
            affordable = int(budget.usd / (report.usd * factor))
            report.flag(f"Measurements alone would cost about ${proj['usd']:.2f}, over the ${fmt(budget.usd)} cap: "
                        f"the run would stop after about {affordable} experiments.",
                        "Raise usd in [budget], lower experiments, or use fewer examples per measurement.")
        if not budget.usd and report.usd:
            report.flag(f"A measurement costs ${report.usd:.4f} but usd = 0 in [budget] allows no spending.",
                        "Set usd in [budget] to what you are willing to spend.")
    report.projection = proj
