"""Applying an experiment: the only way a change reaches the person's file, and its preview."""

from __future__ import annotations

from overnight.core.errors import OvernightError

from .find import recipe_of, surface_of, view_of


def preview(store, run: dict, exp: dict, *, force: bool = False, trusted_only: bool = False, warn: bool = False):
    """(surface, diff) of what applying would write, or why it cannot; writes nothing.

    `trusted_only`: refuse a recipe that is not trusted as it is now (for a front end that cannot ask).
    `warn`: a file changed since the run is previewed anyway (the caller warns with `changed_since`).
    """
    view = view_of(store, exp)
    if trusted_only:
        from .trust_gate import refuse_untrusted

        refuse_untrusted(recipe_of(run))
    surface = surface_of(run)
    return surface, apply_experiment(store, run, exp, surface, view, dry_run=True, force=force or warn)


def changed_since(run: dict, surface) -> str | None:
    """The warning a dry run gives when the file changed since the run began, or None."""
    if surface.source().exists() and surface.fingerprint() != run["source_fingerprint"]:
        return (f"Warning: {surface.source()} changed since run {run['id']} began; applying would replace your edits "
                f"as shown below, so `overnight apply` refuses it without --force.")
    return None


def apply(store, run: dict, exp: dict, *, force: bool = False):
    """(surface, backup path or None): writes the experiment's view to the person's file."""
    view = view_of(store, exp)
    surface = surface_of(run)
    return surface, apply_experiment(store, run, exp, surface, view, force=force)


def apply_experiment(store, run, e, surface, view, *, dry_run=False, force=False):
    """Returns the diff (dry run) or the backup path."""
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
