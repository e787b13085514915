"""`overnight tui --web`: the same app served by textual-serve, on 127.0.0.1 only; a browser that
opens the page gets the app running in a process of its own on the same store."""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.support.browser import CHROMIUM, MISSING, blank, render
from tests.tui_support import run_once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page(url: str, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            assert time.monotonic() < deadline, f"nothing served at {url}"
            time.sleep(0.2)


def other_addresses() -> list[str]:
    """This machine's addresses other than loopback, if it has any."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
    except OSError:
        return []
    return [] if address.startswith("127.") else [address]


def status(port: int, path: str, **headers) -> tuple[int, str]:
    """The status of a GET (a WebSocket handshake when asked for) and the cookie it sets."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}", **headers})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Set-Cookie") or ""
    finally:
        conn.close()


def handshake(port: int, **headers) -> tuple[int, str]:
    return status(port, "/ws", Connection="Upgrade", Upgrade="websocket", **{"Sec-WebSocket-Version": "13",
                  "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}, **headers)


def test_the_tui_is_served_on_loopback_only_with_a_key_and_opens_in_a_browser(tmp_path):
    """Any web page may open a WebSocket to 127.0.0.1, and the UI applies changes to files: the page
    is served only with the printed key, its socket only with the cookie the page sets, from the
    page's own origin and this machine's own name."""
    _, db = run_once(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "overnight.cli.main", "tui", "--web", "--port", str(port), "--db", str(db)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        said = proc.stdout.readline()
        found = re.search(rf"The overnight UI is at (http://127\.0\.0\.1:{port}/\?key=([\w-]{{20,}})) \(this machine only", said)
        assert found, said
        url, key = found.groups()
        html = page(url)
        assert "textual" in html.lower() and f"ws://127.0.0.1:{port}/ws" in html
        assert status(port, "/")[0] == 403 and status(port, "/?key=guess")[0] == 403
        assert status(port, f"/?key={key}", Host=f"rebound.example:{port}")[0] == 403  # a name pointed here
        code, cookie = status(port, f"/?key={key}")
        assert code == 200 and cookie.startswith(f"overnight-{port}={key};") and "HttpOnly" in cookie
        cookie = f"overnight-{port}={key}"
        assert handshake(port)[0] == 403  # no cookie: a page elsewhere, or another local user
        assert handshake(port, Cookie=cookie, Origin="https://evil.example")[0] == 403
        assert handshake(port, Cookie=f"overnight-{port}=guess", Origin=f"http://127.0.0.1:{port}")[0] == 403
        assert handshake(port, Cookie=cookie, Origin=f"http://127.0.0.1:{port}")[0] == 101
        for address in other_addresses():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, port)) != 0, f"the UI answers on {address}"
        if CHROMIUM is None:
            pytest.skip(MISSING)
        shown = render(url, wait=8, seconds=90)
        assert not blank(shown.screenshot)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_a_taken_port_is_one_sentence(cli, workspace):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = cli("tui", "--web", "--port", port)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: Port {port} on 127.0.0.1 is taken: pick another with --port."
