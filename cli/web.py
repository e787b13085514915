"""`overnight tui --web`: the same Textual app, served by textual-serve to a browser on this machine."""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path

import click

from overnight.core.errors import OvernightError

HOST = "127.0.0.1"  # never another interface: the UI applies changes to your files


def serve(db: Path, port: int) -> None:
    from textual_serve.server import Server

    _free(port)
    # Each browser tab gets its own `overnight tui` process on the same store.
    command = shlex.join([sys.executable, "-m", "overnight.cli.main", "tui", "--db", str(Path(db).resolve())])
    click.echo(f"The overnight UI is at http://{HOST}:{port} (this machine only); Ctrl+C stops it.")
    Server(command, host=HOST, port=port, title="overnight").serve()


def _free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            raise OvernightError(f"Port {port} on {HOST} is taken: pick another with --port.") from None
