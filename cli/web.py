"""`overnight tui --web`: the same Textual app, served by textual-serve to a browser on this machine.

The UI applies changes to the person's files and runs their recipes' commands, and a browser lets
any web page open a WebSocket to 127.0.0.1. So the page is served only at the address printed
with its key, which the page hands on to its socket as a cookie, and only to this machine's own
names (a page whose name was made to point here is refused by its Host)."""

from __future__ import annotations

import secrets
import shlex
import socket
import sys
from hmac import compare_digest
from pathlib import Path

import click

from overnight.core.errors import OvernightError

HOST = "127.0.0.1"  # never another interface: the UI applies changes to your files


def serve(db: Path, port: int) -> None:
    from textual_serve.server import Server

    class Guarded(Server):
        async def _make_app(self):
            app = await super()._make_app()
            app.middlewares.append(guard(key, port))
            return app

    _free(port)
    key = secrets.token_urlsafe(24)
    # Each browser tab gets its own `overnight tui` process on the same store.
    command = shlex.join([sys.executable, "-m", "overnight.cli.main", "tui", "--db", str(Path(db).resolve())])
    click.echo(f"The overnight UI is at http://{HOST}:{port}/?key={key} (this machine only, with this key); "
               "Ctrl+C stops it.")
    Guarded(command, host=HOST, port=port, title="overnight").serve()


def guard(key: str, port: int):
    """An aiohttp middleware: the page with the key sets it as a cookie of this port; the socket
    and downloads need the cookie, and a browser's Origin, when it sends one, must be the page's."""
    from aiohttp import web

    hosts = {f"{HOST}:{port}", f"localhost:{port}"}
    cookie = f"overnight-{port}"  # a cookie is shared by every port of a host: one name a port

    @web.middleware
    async def check(request, handler):
        if request.host not in hosts:
            raise web.HTTPForbidden(text=f"This UI answers only as {HOST}:{port}.")
        if request.path.startswith("/static/"):  # textual-serve's own scripts and styles
            return await handler(request)
        keyed = compare_digest(request.query.get("key", ""), key)
        known = compare_digest(request.cookies.get(cookie, ""), key)
        origin = request.headers.get("Origin")
        if request.path == "/" and keyed:
            response = await handler(request)
            response.set_cookie(cookie, key, httponly=True, samesite="Strict", path="/")
            return response
        if known and origin in (None, f"http://{request.host}"):
            return await handler(request)
        raise web.HTTPForbidden(text="Open the UI at the address `overnight tui --web` printed, with its key.")

    return check


def _free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            raise OvernightError(f"Port {port} on {HOST} is taken: pick another with --port.") from None
