"""The one summary a run ends with, read back from the store (so a resumed run's counts too)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Summary:
    run_id: int
    recipe: str
    status: str
    stop_reason: str
    counts: dict[str, int]
    experiments: int
    kept: int
    goal: str
    baseline: float | None
    best: float | None
    best_seq: int | None
    holdout_baseline: float | None
    holdout_best: float | None
    usd: float
    tokens: int
    seconds: float
    # Measured again afresh when the run ended (core/confirm.py); None when nothing was confirmed.
    confirmed_baseline: float | None = None
    confirmed_best: float | None = None
    confirmed_holdout_baseline: float | None = None
    confirmed_holdout_best: float | None = None
    confirmation: str = ""
    held: bool | None = None


def summarize(store, run_id: int, goal: str) -> Summary:
    run = store.run(run_id)
    counts = store.counts(run_id)
    best_row = store.experiment(run["best_experiment"]) if run["best_experiment"] else None
    return Summary(
        run_id=run_id, recipe=run["recipe"], status=run["status"], stop_reason=run["stop_reason"] or "",
        counts=counts, experiments=sum(n for s, n in counts.items() if s != "baseline"),
        kept=counts.get("keep", 0), goal=goal, baseline=run["baseline_score"], best=run["best_score"],
        best_seq=best_row["seq"] if best_row else None, holdout_baseline=run["holdout_baseline"],
        holdout_best=run["holdout_best"], usd=run["usd"] or 0.0, tokens=run["tokens"] or 0, seconds=run["seconds"] or 0.0,
        confirmed_baseline=run["confirmed_baseline"], confirmed_best=run["confirmed_best"],
        confirmed_holdout_baseline=run["confirmed_holdout_baseline"], confirmed_holdout_best=run["confirmed_holdout_best"],
        confirmation=run["confirmation"] or "", held=None if run["confirmed_held"] is None else bool(run["confirmed_held"]),
    )
