"""The two lines at the top of a run: what it is, where it stands, how much better it got."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from overnight.core.numbers import gain

from .format import fmt, gain_text, per_hour

STATUS_STYLE = {"running": "bold green", "paused": "bold yellow", "finished": "bold", "stopped": "yellow", "failed": "bold red"}


def status_text(run: dict, alive: bool = True) -> str:
    status = run["status"] or "?"
    if status in ("running", "paused") and not alive:
        from overnight.core.state import resume_command  # only for a dead run: the UI starts without it

        return f"died (resume with: {resume_command(run)})"  # as status and log say it
    if status == "running" and run.get("control") == "pause":
        return "pausing after this experiment"
    if status in ("running", "paused") and run.get("control") == "stop":
        return "stopping after this experiment"
    return status


class RunSummary(Static):
    def show(self, run: dict, elapsed: float, alive: bool = True) -> None:
        goal = run["goal"] or "maximize"
        top = Text()
        top.append(f"{run['recipe']}", style="bold")
        top.append(f" · run {run['id']} · ")
        status = status_text(run, alive)
        top.append(status, style=STATUS_STYLE.get(run["status"], ""))
        if run["stop_reason"] and run["status"] not in ("running", "paused"):
            top.append(f": {run['stop_reason']}")
        second = Text()
        arrow = "↑" if goal == "maximize" else "↓"
        second.append(f"{arrow} {goal}  ")
        label = "train " if run["holdout_baseline"] is not None else ""
        second.append(f"{label}{fmt(run['baseline_score'])} → {fmt(run['best_score'])} ")
        second.append(f"({gain_text(run['baseline_score'], run['best_score'], goal)})", style="bold")
        if run["holdout_baseline"] is not None or run["holdout_best"] is not None:
            second.append(f" │ holdout {fmt(run['holdout_baseline'])} → {fmt(run['holdout_best'])} ")
            second.append(f"({gain_text(run['holdout_baseline'], run['holdout_best'], goal)})", style="bold")
            if _diverged(run, goal):
                second.append(" holdout fell!", style="bold red")
        second.append(f" │ {per_hour(run['experiments'], elapsed)}")
        self.update(Text("\n").join([top, second]))


def _diverged(run: dict, goal: str) -> bool:
    """Train rose while holdout fell: the gain may not be real."""
    values = (run["baseline_score"], run["best_score"], run["holdout_baseline"], run["holdout_best"])
    if None in values:
        return False
    return gain(values[1], values[0], goal) > 0 and gain(values[3], values[2], goal) < 0
