"""Applying an experiment: the only way a change reaches the person's file, and its preview."""

from __future__ import annotations

import os
import stat

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


def outside_target(run: dict):
    """The file applying writes, when it lies outside the recipe folder (a recipe written in place): named
    and confirmed before anything is written: (file, recipe folder), or None when it lies inside."""
    folder = recipe_of(run).dir.resolve()
    source = surface_of(run).source().resolve()
    return None if source.is_relative_to(folder) else (source, folder)


def apply(store, run: dict, exp: dict, *, force: bool = False):
    """(surface, backup path or None): writes the experiment's view to the person's file.

    Raises `Unchanged` when the file already holds it (the preview's empty diff)."""
    view = view_of(store, exp)
    surface = surface_of(run)
    return surface, apply_experiment(store, run, exp, surface, view, force=force)


NO_DIFFERENCE = "No difference: the file already holds this version."


class Unchanged(OvernightError):
    """The file already holds the experiment's version, so nothing was written: not a failure (exit 0)."""

    def __init__(self, message: str = NO_DIFFERENCE):
        super().__init__(message, exit_code=0)


# Experiments whose candidate has no score: applying one would be a silent guess.
NOT_MEASURED = {"crash": "crashed", "timeout": "timed out", "interrupted": "was interrupted", "guard_failed": "failed a guard"}


def apply_experiment(store, run, e, surface, view, *, dry_run=False, force=False):
    """Returns the diff (dry run) or the backup path."""
    if recover(store):
        run = store.run(run["id"])  # its fingerprint may have moved
    source = surface.source()
    if not source.exists():
        raise OvernightError(f"The file {source} does not exist any more; nothing was written.")
    current = surface.read()
    # Decided here for both the preview and the apply, before any refusal: a file that already holds
    # the version needs nothing written, so a second apply makes no backup and rewrites nothing.
    # Bounded as a run's diffs are: a line diff of two long texts rewritten throughout takes minutes.
    # (Imported here: `status` imports this module for `recover`, and the record brings asyncio.)
    from overnight.core.record import bounded_diff

    diff = "" if current == view else bounded_diff(surface, current, view)
    if not diff:
        if dry_run:
            return diff
        raise Unchanged(NO_DIFFERENCE)
    if not force and _read_only(source):
        import shlex

        # "Use --force to apply anyway." as in the refusals below: the TUI turns it into its own advice.
        raise OvernightError(f"{source} is read-only, so nothing was written: make it writable first "
                             f"(chmod u+w {shlex.quote(str(source))}). Use --force to apply anyway.")
    if not force and e["status"] in NOT_MEASURED:
        raise OvernightError(
            f"Experiment {run['id']}:{e['seq']} {NOT_MEASURED[e['status']]} ({e['reason']}), so it has no score to stand on; "
            f"nothing was written. Use --force to apply it anyway."
        )
    if not force and surface.fingerprint() != run["source_fingerprint"]:
        raise OvernightError(
            f"{source} changed since run {run['id']} began, so applying could undo your edits; "
            f"nothing was written. Use --force to apply anyway."
        )
    if dry_run:
        return diff
    from overnight.core.contracts import digest

    backup_dir = store.path.parent / "backups"
    store.put_candidate(digest(current), current)
    old = surface.fingerprint()
    journal = store.begin_apply(run_id=run["id"], experiment_id=e["id"], path=str(source),
                                old_digest=old, new_digest=_written_digest(surface, view, store))
    try:
        backup = surface.apply(view, backup_dir)
    except Exception as exc:
        if not _still(surface, old):
            raise  # the file moved: left begun, for `recover` to sort out
        # A failure, not a kill, and the file is as it was: the apply failed, there is nothing to roll back.
        store.end_apply(journal, "failed")
        if isinstance(exc, OSError):  # a plugin's own write (atomic_write says it in a sentence already)
            raise OvernightError(f"Cannot write {source}: {exc}; nothing was written.") from None
        raise
    # The review, the run's fingerprint and the journal's end in one transaction: a kill before
    # it leaves an apply that the next apply or `overnight status` finishes.
    store.finish_apply(journal, fingerprint=surface.fingerprint(), review=dict(
        run_id=run["id"], experiment_id=e["id"], recipe=run["recipe"], action="applied", note="",
        path=str(source), backup=str(backup) if backup else "", previous=digest(current)))
    return backup


def _read_only(path) -> bool:
    """Its owner took away the write bit (or this user may not write it): replacing it would overrule that."""
    return not path.stat().st_mode & stat.S_IWUSR or not os.access(path, os.W_OK)


def _still(surface, fingerprint: str) -> bool:
    """Whether the file is as it was before the apply began (False when it cannot be read)."""
    try:
        return surface.fingerprint() == fingerprint
    except Exception:
        return False


def _written_digest(surface, view: str, store) -> str:
    """The fingerprint the file will have once the view is applied, from a private copy."""
    import hashlib
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="overnight-apply-") as folder:
        return hashlib.sha256(Path(surface.materialize(view, Path(folder))).read_bytes()).hexdigest()


def recover(store) -> list[str]:
    """Finishes or rolls back the applies a kill interrupted; one sentence for each.

    The file has the new content: the apply is finished (the run's fingerprint moves, so a
    later apply is not refused for overnight's own write). The old: rolled back. Neither:
    the person changed it since; left alone. Temporary files the kill left are removed."""
    import hashlib
    from pathlib import Path

    from overnight.core.files import sweep_temporaries

    said = []
    for j in store.unfinished_applies():
        path = Path(j["path"])
        sweep_temporaries(path.parent, store.path.parent / "backups")
        # Only a file can hold either version: a device or a pipe named by a store edited by hand is not read.
        now = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        run = store.run(j["run_id"])
        if now == j["new_digest"]:
            store.finish_apply(j["id"], fingerprint=now, review=dict(
                run_id=j["run_id"], experiment_id=j["experiment_id"], recipe=run["recipe"] if run else "",
                action="applied", note="finished after an interruption", path=str(path), backup="", previous=""))
            said.append(f"An interrupted apply to {path} was finished: the file already held the new version.")
        else:
            store.end_apply(j["id"], "rolled back" if now == j["old_digest"] else "abandoned")
            if now == j["old_digest"]:
                said.append(f"An interrupted apply to {path} was rolled back: the file still holds its old version.")
    return said
