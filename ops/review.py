"""Reviewing an experiment: reject it or star it, with a note later runs' agents read."""

from __future__ import annotations

from overnight.core.errors import OvernightError

# The agents whose prompt or brief includes the recipe's notes; the others propose without them.
NOTE_READERS = ("llm", "command")


def agent_kind(run: dict) -> str | None:
    from overnight.ops.find import recipe_of

    try:
        return recipe_of(run).agent.cls.name
    except Exception:  # noqa: BLE001 - a recipe that no longer parses still takes notes
        return None


def who_reads(run: dict) -> str:
    """Says exactly which agent reads a note, or that this recipe's does not."""
    kind = agent_kind(run)
    if kind in NOTE_READERS:
        return f"; the {kind} agent reads it"
    if kind == "search":  # it reads no prose, only what narrows its space (plugins/search_notes.py)
        return ('; the search agent follows it only where it fixes or bounds a parameter, such as "keep B3 at 12" '
                'or "B3 between 10 and 20"')
    return (f", but this recipe's agent{f', {kind},' if kind else ''} does not read notes "
            f"(only the {' and '.join(NOTE_READERS)} agents do)")


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
    said = f" The note is kept for later runs of '{run['recipe']}'{who_reads(run)}." if note else ""
    return f"{action.capitalize()} experiment {run['id']}:{exp['seq']}.{said}"


def reject(store, run: dict, exp: dict, note: str) -> str:
    return review(store, run, exp, "rejected", note)


def star(store, run: dict, exp: dict, note: str = "") -> str:
    return review(store, run, exp, "starred", note)
