"""The one summary a run ends with, read back from the store (so a resumed run's counts too)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# What to change when no experiment could be measured, by the status they all ended in.
UNUSABLE_ADVICE = {
    "invalid": ("the agent's model could not give a usable proposal: try a larger model, a larger max_tokens, "
                "or edit_format = \"search_replace\" in [agent]; `overnight show {run}:1` prints its reply"),
    "crash": "the metric fails on every candidate: run `overnight check {recipe}` and read `overnight show {run}:1`",
    "timeout": "every candidate ran out of time: raise per_experiment_seconds in [budget]",
}
UNPARSED_OWN = "the agent's proposals do not fit the file as it is: `overnight show {run}:1` says why for the first"


@dataclass
class Summary:
    """What a run did, as the end of `overnight run`, the TUI and notifications tell it."""

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
    # What the figures alone do not say: a baseline failing its own guard, nothing usable at all.
    notes: list[str] = field(default_factory=list)


def summarize(store, run_id: int, goal: str) -> Summary:
    run = store.run(run_id)
    counts = store.counts(run_id)
    # As the budget and `status` count: an interrupted experiment is not one (it runs again on resume).
    interrupted = counts.pop("interrupted", 0)
    best_row = store.experiment(run["best_experiment"]) if run["best_experiment"] else None
    summary = Summary(
        run_id=run_id, recipe=run["recipe"], status=run["status"], stop_reason=run["stop_reason"] or "",
        counts=counts, experiments=sum(n for s, n in counts.items() if s != "baseline"),
        kept=counts.get("keep", 0), goal=goal, baseline=run["baseline_score"], best=run["best_score"],
        best_seq=best_row["seq"] if best_row else None, holdout_baseline=run["holdout_baseline"],
        holdout_best=run["holdout_best"], usd=run["usd"] or 0.0, tokens=run["tokens"] or 0, seconds=run["seconds"] or 0.0,
        confirmed_baseline=run["confirmed_baseline"], confirmed_best=run["confirmed_best"],
        confirmed_holdout_baseline=run["confirmed_holdout_baseline"], confirmed_holdout_best=run["confirmed_holdout_best"],
        confirmation=run["confirmation"] or "", held=None if run["confirmed_held"] is None else bool(run["confirmed_held"]),
    )
    summary.notes = _notes(store, run, summary)
    if interrupted:
        summary.notes.append(f"Not counted: {interrupted} interrupted experiment{'s' if interrupted > 1 else ''}.")
    return summary


def _notes(store, run: dict, s: Summary) -> list[str]:
    notes = []
    base = store.experiment(run["baseline_experiment"]) if run["baseline_experiment"] else None
    warned = re.search(r"the baseline already fails a guard \((.*)\)$", (base or {}).get("reason") or "")
    if warned:
        notes.append(f"The baseline already fails a guard ({warned.group(1)}): only a candidate that fixes it can be kept.")
    failed = {k: n for k, n in s.counts.items() if k in UNUSABLE_ADVICE}
    if s.experiments and not s.kept and sum(failed.values()) == s.experiments:
        rows = [r for r in store.experiments(s.run_id) if r["status"] in UNUSABLE_ADVICE]
        status = max(failed, key=failed.get)
        reason, n = Counter(_gist(r["reason"]) for r in rows if r["status"] == status).most_common(1)[0]
        # A model's advice only where a model answered: a scripted or search agent's proposals are the person's own.
        advice = UNUSABLE_ADVICE[status] if status != "invalid" or s.tokens else UNPARSED_OWN
        notes.append(f"No proposal could be used: {s.experiments} of {s.experiments} ended {'/'.join(sorted(failed))}; "
                     f"the commonest reason ({n} of {s.experiments}): {reason}. To change: "
                     + advice.format(run=s.run_id, recipe=s.recipe) + ".")
    return notes


def _gist(reason: str | None) -> str:
    """A reason without its particulars, so the same problem counts once."""
    text = re.sub(r" \(after one retry\)$", "", (reason or "").strip().split("\n", 1)[0])
    text = re.sub(r"^the agent's proposal could not be used: ", "", text)
    return re.split(r"[:;]| \(", text, maxsplit=1)[0].strip() or "no reason given"
