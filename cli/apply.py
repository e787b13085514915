"""`overnight apply`: the only way a change reaches your file."""

from __future__ import annotations

import click

from overnight.cli.common import db_option, find_experiment, open_store, surface_of, view_of
from overnight.core.errors import OvernightError


@click.command()
@click.argument("exp")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--force", is_flag=True, help="Apply even if the file changed since the run began.")
@db_option
def apply(exp, dry_run, force, db):
    """Write experiment EXP's change to your file, keeping the previous version."""
    store = open_store(db)
    run, e = find_experiment(store, exp)
    view = view_of(store, e)
    surface = surface_of(run)
    result = apply_experiment(store, run, e, surface, view, dry_run=dry_run, force=force)
    if dry_run:
        click.echo(result or "No difference: the file already holds this version.")
        return
    click.echo(f"Applied experiment {run['id']}:{e['seq']} to {surface.source()}.")
    if result:
        click.echo(f"The previous version is kept at {result}.")


def apply_experiment(store, run, e, surface, view, *, dry_run=False, force=False):
    """Shared by the CLI and the TUI. Returns the diff (dry run) or the backup path."""
    source = surface.source()
    if not source.exists():
        raise OvernightError(f"The file {source} does not exist any more; nothing was written.")
    if not force and surface.fingerprint() != run["source_fingerprint"]:
        raise OvernightError(
            f"{source} changed since run {run['id']} began, so applying could undo your edits; "
            f"nothing was written. Use --force to apply anyway."
        )
    current = surface.read()
    if dry_run:
        return surface.diff(current, view)
    from overnight.core.contracts import digest

    backup_dir = store.path.parent / "backups"
    store.put_candidate(digest(current), current)
    backup = surface.apply(view, backup_dir)
    store.add_review(run_id=run["id"], experiment_id=e["id"], recipe=run["recipe"], action="applied", note="",
                     path=str(source), backup=str(backup) if backup else "", previous=digest(current))
    # Later applies of this run compare against the file as it is now.
    store.update_run(run["id"], source_fingerprint=surface.fingerprint())
    return backup
