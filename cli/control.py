"""Controls of a run and review notes, for scripts: pause, resume, stop, steer, reject, star.

They work through the store, so they reach a run started in another terminal:
the loop reads `runs.control` between experiments and the recipe's notes before
every proposal. The TUI calls the same functions.
"""

from __future__ import annotations

import os

import click

from overnight.cli.common import db_option, find_experiment, find_run, open_store
from overnight.core.errors import OvernightError

LIVE = ("running", "paused")


def process_alive(run: dict) -> bool:
    """False when the process that ran `run` is gone (killed, machine restarted)."""
    pid = run.get("pid")
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def _live(run: dict, verb: str) -> None:
    if run["status"] not in LIVE:
        hint = f" Continue it with `overnight run {run['recipe_path']} --resume`." if run["status"] == "stopped" else ""
        raise OvernightError(f"Run {run['id']} is {run['status']}, so there is nothing to {verb}.{hint}")
    if not process_alive(run):
        raise OvernightError(
            f"Run {run['id']} is marked {run['status']} but its process ({run['pid']}) is gone; "
            f"continue it with `overnight run {run['recipe_path']} --resume`."
        )


def pause_run(store, run: dict) -> str:
    _live(run, "pause")
    if run["status"] == "paused" or run["control"] == "pause":
        return f"Run {run['id']} is already paused."
    store.set_control(run["id"], "pause")
    return f"Run {run['id']} pauses after the experiment in flight; `overnight resume {run['id']}` continues it."


def resume_run(store, run: dict) -> str:
    _live(run, "resume")
    if run["status"] != "paused" and run["control"] != "pause":
        return f"Run {run['id']} is not paused."
    store.set_control(run["id"], None)
    return f"Run {run['id']} continues."


def stop_run(store, run: dict) -> str:
    _live(run, "stop")
    store.set_control(run["id"], "stop")
    return f"Run {run['id']} stops after the experiment in flight."


# The search agent reads no prose: only what narrows its space (plugins/search_notes.py).
SEARCH_READS = ' A search agent follows only a %s that fixes or bounds a parameter, such as "keep B3 at 12" or "B3 between 10 and 20".'


def steer_run(store, run: dict, text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise OvernightError("A steering line cannot be empty: write the guidance, e.g. overnight steer \"keep it under 50 words\".")
    store.add_note(run["recipe"], text, kind="steer", run_id=run["id"])
    if run["status"] in LIVE:
        return f"Run {run['id']} reads this from its next proposal on; later runs of '{run['recipe']}' read it too." + SEARCH_READS % "line"
    return f"Later runs of '{run['recipe']}' read this." + SEARCH_READS % "line"


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


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@db_option
def pause(run_ref, db):
    """Pause RUN (default: the latest) after the experiment in flight."""
    store = open_store(db)
    click.echo(pause_run(store, find_run(store, run_ref)))


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@db_option
def resume(run_ref, db):
    """Resume RUN (default: the latest) after a pause."""
    store = open_store(db)
    click.echo(resume_run(store, find_run(store, run_ref)))


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@db_option
def stop(run_ref, db):
    """Stop RUN (default: the latest) cleanly after the experiment in flight."""
    store = open_store(db)
    click.echo(stop_run(store, find_run(store, run_ref)))


@click.command()
@click.argument("text")
@click.option("--run", "run_ref", metavar="RUN", help="The run to steer (default: the latest).")
@db_option
def steer(text, run_ref, db):
    """Give the agent a line of guidance, read from its next proposal on."""
    store = open_store(db)
    click.echo(steer_run(store, find_run(store, run_ref), text))


@click.command()
@click.argument("exp")
@click.option("--note", required=True, help="Why: the agent reads it in later runs of the recipe.")
@db_option
def reject(exp, note, db):
    """Reject experiment EXP (SEQ in the latest run, or RUN:SEQ) with a note."""
    store = open_store(db)
    run, e = find_experiment(store, exp)
    click.echo(review(store, run, e, "rejected", note))


@click.command()
@click.argument("exp")
@click.option("--note", default="", help="What you liked: the agent reads it in later runs of the recipe.")
@db_option
def star(exp, note, db):
    """Star experiment EXP (SEQ in the latest run, or RUN:SEQ)."""
    store = open_store(db)
    run, e = find_experiment(store, exp)
    click.echo(review(store, run, e, "starred", note))

