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
