"""`overnight apply`: the only way a change reaches your file."""

from __future__ import annotations

import click

from overnight.cli.common import db_option, open_store
from overnight.ops.find import find_experiment


@click.command()
@click.argument("exp")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--force", is_flag=True, help="Apply even if the file changed since the run began or is read-only.")
@click.option("--yes", "-y", is_flag=True, help="Write a file outside the recipe folder without asking.")
@db_option
def apply(exp, dry_run, force, db, yes=False):
    """Write experiment EXP's change to your file, keeping the previous version."""
    from overnight.ops import apply as ops

    store = open_store(db, create=False)
    run, e = find_experiment(store, exp)
    if dry_run:
        surface, diff = ops.preview(store, run, e, force=force, warn=True)
        warning = None if force or not diff else ops.changed_since(run, surface)
        if warning:
            click.echo(warning)
        click.echo(diff or ops.NO_DIFFERENCE)
        return
    try:
        outside = ops.outside_target(run)
        if outside and not yes and not ops.preview(store, run, e, force=True)[1]:
            raise ops.Unchanged()  # nothing to write, so nothing to ask
        _outside(outside, run, e, yes)
        surface, backup = ops.apply(store, run, e, force=force)
    except ops.Unchanged as same:  # the same sentence as the dry run's, and nothing written
        click.echo(same.message)
        return
    click.echo(f"Applied experiment {run['id']}:{e['seq']} to {surface.source()}.")
    if backup:
        click.echo(f"The previous version is kept at {backup}.")


def _outside(outside, run, e, yes: bool) -> None:
    """A file outside the recipe folder is named before it is written, and written only with a yes."""
    if outside is None or yes:
        return
    from overnight.core.errors import OvernightError

    target, folder = outside
    where = f"Experiment {run['id']}:{e['seq']} would write {target}, outside the recipe folder {folder}"
    if not _terminal():
        raise OvernightError(f"{where}; nothing was written: pass --yes to write it.")
    if not click.confirm(f"{where}. Write it?", default=False):
        raise OvernightError(f"Nothing was written to {target}.")


def _terminal() -> bool:
    import sys

    return sys.stdin.isatty()
