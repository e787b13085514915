"""Controlling a live run: pause, resume, stop, steer.

They work through the store, so they reach a run started in another terminal:
the loop reads `runs.control` between experiments and the recipe's notes before
every proposal. Each returns the sentence to show; a mistake raises one.
"""

from __future__ import annotations

from overnight.core.errors import OvernightError

LIVE = ("running", "paused")


def process_alive(run: dict) -> bool:
    """False when the process that ran `run` is gone (killed, machine restarted), as `status` tells it."""
    from overnight.core.state import process_gone

    return not process_gone(run)


def _live(run: dict, verb: str) -> None:
    from overnight.core.state import resume_command

    # How to continue a run is advice for pause and resume; someone stopping one wants it to stay stopped.
    if run["status"] not in LIVE:
        hint = f" Continue it with `{resume_command(run)}`." if run["status"] == "stopped" and verb != "stop" else ""
        raise OvernightError(f"Run {run['id']} is {run['status']}, so there is nothing to {verb}.{hint}")
    if not process_alive(run):
        then = ", so there is nothing to stop" if verb == "stop" else f"; continue it with `{resume_command(run)}`"
        raise OvernightError(f"Run {run['id']} is marked {run['status']} but its process ({run['pid']}) is gone{then}.")


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


def steer_run(store, run: dict, text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise OvernightError("A steering line cannot be empty: write the guidance, e.g. overnight steer \"keep it under 50 words\".")
    from overnight.ops.review import NOTE_READERS, agent_kind, who_reads

    store.add_note(run["recipe"], text, kind="steer", run_id=run["id"])
    if agent_kind(run) not in (*NOTE_READERS, "search"):
        return f"Noted for '{run['recipe']}'{who_reads(run)}."
    if run["status"] in LIVE and process_alive(run):
        return f"Run {run['id']} reads this from its next proposal on, and later runs of '{run['recipe']}' too{who_reads(run)}."
    return f"Later runs of '{run['recipe']}' read this{who_reads(run)}."
