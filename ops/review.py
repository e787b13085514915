"""Reviewing an experiment: reject it or star it, with a note later runs' agents read."""

from __future__ import annotations

from overnight.core.errors import OvernightError

from .control import SEARCH_READS


def review(store, run: dict, exp: dict, action: str, note: str = "") -> str:
    """Records a rejection or a star; a note also goes to the recipe's notes, for later runs' agents."""
    note = (note or "").strip()
    if exp["status"] == "baseline" and action == "rejected":
        raise OvernightError(f"Experiment {run['id']}:{exp['seq']} is the baseline (your file as it was); there is nothing to reject.")
    if action == "rejected" and not note:
        raise OvernightError("A rejection needs a note saying why (--note TEXT): the agent reads it in later runs.")
    store.add_review(run_id=run["id"], experiment_id=exp["id"], recipe=run["recipe"], action=action, note=note)
    if note:
        what = (exp["rationale"] or "").strip()
        about = f" ({what})" if what and exp["status"] != "baseline" else ""
        verb = "rejected" if action == "rejected" else "starred"
        store.add_note(run["recipe"], f"A reviewer {verb} experiment {run['id']}:{exp['seq']}{about}: {note}",
                       kind="review", run_id=run["id"])
    return f"{action.capitalize()} experiment {run['id']}:{exp['seq']}." + (" The agent reads the note in later runs." + SEARCH_READS % "note" if note else "")


def reject(store, run: dict, exp: dict, note: str) -> str:
    return review(store, run, exp, "rejected", note)


def star(store, run: dict, exp: dict, note: str = "") -> str:
    return review(store, run, exp, "starred", note)
