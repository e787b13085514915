"""Time, experiments and money spent against the run's budget, as three progress bars."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from .format import duration


class Gauge(Horizontal):
    """One budget: its name, a bar (hidden when there is no cap) and the figures."""

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = name

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="gauge-name")
        yield ProgressBar(total=1, show_eta=False, show_percentage=False, classes="gauge-bar")
        yield Label("", classes="gauge-figures")

    def show(self, used: float, cap: float | None, figures: str) -> None:
        bar = self.query_one(ProgressBar)
        bar.display = bool(cap)
        if cap:
            bar.update(total=cap, progress=min(used, cap))
        self.query_one(".gauge-figures", Label).update(figures)


class BudgetGauges(Horizontal):
    def compose(self) -> ComposeResult:
        yield Gauge("time", id="gauge-time")
        yield Gauge("exps", id="gauge-experiments")
        yield Gauge("$", id="gauge-usd")

    def show(self, run: dict, budget: dict, elapsed: float) -> None:
        minutes = budget.get("minutes")
        cap = minutes * 60 if minutes else None
        self.query_one("#gauge-time", Gauge).show(
            elapsed, cap, f"{duration(elapsed)}/{duration(cap)}" if cap else f"{duration(elapsed)}, no cap")
        n, most = run["experiments"] or 0, budget.get("experiments")
        self.query_one("#gauge-experiments", Gauge).show(n, most, f"{n}/{most}" if most else f"{n}, no cap")
        usd, usd_cap = run["usd"] or 0.0, budget.get("usd") or 0.0
        self.query_one("#gauge-usd", Gauge).show(
            usd, usd_cap, f"{usd:.2f}/{usd_cap:.2f}" if usd_cap else f"{usd:.2f}, none allowed" if not usd else f"{usd:.2f}")
