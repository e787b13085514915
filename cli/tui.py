"""`overnight tui`: the terminal UI on this workspace's store."""

from __future__ import annotations

import gc

import click

from overnight.cli.common import db_option


@click.command()
@click.option("--web", is_flag=True, help="Serve the same UI to a browser on this machine (127.0.0.1 only).")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="The port for --web.")
@db_option
def tui(db, web=False, port=8765):
    """Open the terminal UI: watch runs live, review experiments, apply what you trust."""
    # Imported here, when the command runs: the CLI may start the TUI, and nothing else of it.
    from overnight.core.store import default_path

    if web:
        from overnight.cli.web import serve

        return serve(db or default_path(), port)
    from overnight.cli import main as program

    path = db or default_path()
    if program.owns_process:
        from overnight.tui import prefetch

        prefetch.start(path)  # a single run's ledger, read on the other core while the UI is imported
        gc.disable()  # as `run` does: importing the UI makes many objects and frees few
    from overnight.tui.app import OvernightApp

    if program.owns_process:  # what was imported lives as long as the UI: its collections need not walk it
        gc.freeze()
        gc.enable()
    OvernightApp(path).run()
