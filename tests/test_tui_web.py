"""`overnight tui --web`: the same app served by textual-serve, on 127.0.0.1 only; a browser that
opens the page gets the app running in a process of its own on the same store."""

from __future__ import annotations

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


def test_the_tui_is_served_on_loopback_only_and_opens_in_a_browser(tmp_path):
    _, db = run_once(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "overnight.cli.main", "tui", "--web", "--port", str(port), "--db", str(db)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        html = page(f"http://127.0.0.1:{port}/")
        assert "textual" in html.lower() and f"ws://127.0.0.1:{port}/ws" in html
        for address in other_addresses():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, port)) != 0, f"the UI answers on {address}"
        if CHROMIUM is None:
            pytest.skip(MISSING)
        shown = render(f"http://127.0.0.1:{port}/", wait=8, seconds=90)
        assert not blank(shown.screenshot)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"The overnight UI is at http://127.0.0.1:{port} (this machine only)" in out


def test_a_taken_port_is_one_sentence(cli, workspace):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = cli("tui", "--web", "--port", port)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: Port {port} on 127.0.0.1 is taken: pick another with --port."
