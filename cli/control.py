"""Controls of a run and review notes, for scripts: pause, resume, stop, steer, reject, star.

The commands only find what they act on and print the sentence; the operations
themselves (overnight.ops.control, overnight.ops.review) are the TUI's too.
"""

from __future__ import annotations

import click

from overnight.cli.common import db_option, open_store
from overnight.ops.control import pause_run, resume_run, steer_run, stop_run
from overnight.ops.find import find_experiment, find_run
from overnight.ops.review import reject as reject_experiment, star as star_experiment


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@db_option
def pause(run_ref, db):
    """Pause RUN (default: the latest) after the experiment in flight."""
    store = open_store(db, create=False)
    click.echo(pause_run(store, find_run(store, run_ref)))


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@db_option
def resume(run_ref, db):
    """Resume RUN (default: the latest) after a pause."""
    store = open_store(db, create=False)
    click.echo(resume_run(store, find_run(store, run_ref)))


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@db_option
def stop(run_ref, db):
    """Stop RUN (default: the latest) cleanly after the experiment in flight."""
    store = open_store(db, create=False)
    click.echo(stop_run(store, find_run(store, run_ref)))


@click.command()
@click.argument("text")
@click.option("--run", "run_ref", metavar="RUN", help="The run to steer (default: the latest).")
@db_option
def steer(text, run_ref, db):
    """Give the agent a line of guidance, read from its next proposal on."""
    store = open_store(db, create=False)
    click.echo(steer_run(store, find_run(store, run_ref), text))


@click.command()
@click.argument("exp")
@click.option("--note", required=True, help="Why: the agent reads it in later runs of the recipe.")
@db_option
def reject(exp, note, db):
    """Reject experiment EXP (SEQ in the latest run, or RUN:SEQ) with a note."""
    store = open_store(db, create=False)
    run, e = find_experiment(store, exp)
    click.echo(reject_experiment(store, run, e, note))


@click.command()
@click.argument("exp")
@click.option("--note", default="", help="What you liked: the agent reads it in later runs of the recipe.")
@db_option
def star(exp, note, db):
    """Star experiment EXP (SEQ in the latest run, or RUN:SEQ)."""
    store = open_store(db, create=False)
    run, e = find_experiment(store, exp)
    click.echo(star_experiment(store, run, e, note))

