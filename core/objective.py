"""One number from one or several metrics, and the guards that must hold for a keep."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .contracts import Goal, Measurement, MeasureRequest, Metric
from .numbers import fmt, sign


@dataclass
class Weighted:
    """One component of the objective, as the recipe's [metric] table sets it."""

    metric: Metric
    weight: float
    label: str
    goal: Goal | None = None  # None: the metric's own

    def __post_init__(self):
        self.goal = self.goal or self.metric.goal


@dataclass
class Bounded:
    metric: Metric
    min: float | None
    max: float | None
    label: str

    def problem(self, m: Measurement) -> str | None:
        name = f"guard {self.label}"
        if not m.ok:
            return f"{name} could not be measured: {m.reason}"
        if self.min is not None and m.value < self.min:
            return f"{name} = {fmt(m.value)}, below its min {fmt(self.min)}"
        if self.max is not None and m.value > self.max:
            return f"{name} = {fmt(m.value)}, above its max {fmt(self.max)}"
        return None


class Objective:
    def __init__(self, metrics: list[Weighted], guards: list[Bounded] = ()):
        self.metrics = metrics
        self.guards = list(guards)
        # One metric keeps its own goal and units; several become one "higher is better" sum.
        self.goal = metrics[0].goal if len(metrics) == 1 else "maximize"
        self.deterministic = all(w.metric.deterministic for w in metrics)
        self.has_examples = any(w.metric.has_examples for w in metrics)
        # How often the baseline is measured; None lets the loop choose (1 when deterministic).
        self.repeats: int | None = None

    def all_metrics(self) -> list[Metric]:
        return [w.metric for w in self.metrics] + [g.metric for g in self.guards]

    def describe(self) -> str:
        if len(self.metrics) == 1:
            return self.metrics[0].metric.describe()
        parts = [f"{w.weight:g} x {w.label} ({w.goal})" for w in self.metrics]
        return "weighted sum, higher is better: " + " + ".join(parts)

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        start = time.monotonic()
        if len(self.metrics) == 1:
            m = self.metrics[0].metric.measure(artifact, folder, request)
            m.seconds = m.seconds or time.monotonic() - start
            if m.ok and self.metrics[0].weight != 1.0:
                m.components = {self.metrics[0].label: m.value, **m.components}
            return m
        total = Measurement(0.0)
        for w in self.metrics:
            m = w.metric.measure(artifact, folder, request)
            total.examples += m.examples
            total.llm_calls += m.llm_calls
            total.cost_usd += m.cost_usd
            total.tokens += m.tokens
            if m.trace:
                total.trace += f"[{w.label}]\n{m.trace}\n"
            if not m.ok:
                total.status, total.value = m.status, None
                total.reason = f"{w.label}: {m.reason}"
                break
            total.components[w.label] = m.value
            total.value += w.weight * sign(w.goal) * m.value
        total.seconds = time.monotonic() - start
        return total

    def screen(self, view: str) -> str | None:
        """The first metric's reason to refuse a view unmeasured (the contamination guard), or None."""
        for metric in self.all_metrics():
            reason = metric.screen(view)
            if reason:
                return reason
        return None

    def guard_problem(self, artifact: Path, folder: Path, request: MeasureRequest) -> tuple[str | None, dict]:
        values = {}
        for g in self.guards:
            m = g.metric.measure(artifact, folder, request)
            values[g.label] = m.value
            problem = g.problem(m)
            if problem:
                return problem, values
        return None, values
