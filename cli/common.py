"""What several commands share: the store option and opening the store.

Finding runs and experiments is an operation both front ends use (overnight.ops.find);
it is named here too for the commands that import it from here.
"""

from __future__ import annotations

from pathlib import Path

import click

db_option = click.option(
    "--db", "db", type=click.Path(dir_okay=False, path_type=Path), envvar="OVERNIGHT_DB",
    help="The store (default: .overnight/overnight.db here, or $OVERNIGHT_DB).",
)


def open_store(db: Path | None, readonly: bool = False, create: bool = True):
    from overnight.core.store import Store

    return Store(db, readonly=readonly, create=create)


def check_output(path, store) -> None:
    """Refuses an output file that is the store (or a file SQLite keeps beside it), or the recipe or
    surface file of any run in it: writing there would destroy what is being read, or write the
    person's own file, which only `overnight apply` does."""
    from overnight.core.errors import OvernightError

    target = Path(path).resolve()
    if target in {f.resolve() for f in store.files()}:
        raise OvernightError(f"{path} is overnight's store, so nothing was written: choose another file for the output.")
    for run in store.runs():
        if any(f and Path(f).resolve() == target for f in (run["source_path"], run["recipe_path"])):
            raise OvernightError(f"{path} is a file of run {run['id']}'s recipe, which only `overnight apply` writes, "
                                 "so nothing was written: choose another file for the output.")
