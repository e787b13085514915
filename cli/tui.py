"""`overnight tui`: the terminal UI on this workspace's store."""

from __future__ import annotations

import click

from overnight.cli.common import db_option


@click.command()
@db_option
def tui(db):
    """Open the terminal UI: watch runs live, review experiments, apply what you trust."""
    # Imported here, when the command runs: the CLI may start the TUI, and nothing else of it.
    from overnight.core.store import default_path
    from overnight.tui.app import OvernightApp

    OvernightApp(db or default_path()).run()
