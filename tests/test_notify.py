"""Notifications through apprise, delivered for real: apprise's `json://` scheme posts to a
receiver this test starts on 127.0.0.1. Each event arrives once with its text; a URL that cannot
be reached never stops the run; the URL's password is in no stored row, log or output."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.data.core.kit import no_traceback, recipe

PASSWORD = "hunter2-Night-s3cret"
DOWN = "json://127.0.0.1:1/down"  # nothing listens on port 1


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body posted to it, with its headers."""

    def __init__(self):
        got = self.posts = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append({"path": self.path, "auth": self.headers.get("Authorization"), **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "hook") -> str:
        return f"json://night:{PASSWORD}@127.0.0.1:{self.port}/{path}"

    def kinds(self) -> Counter:
        return Counter(p["title"].split(" ", 2)[-1] if " has a new best" not in p["title"] else "new best" for p in self.posts)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def overnight(workspace: Path, *args, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overnight.cli.main", *map(str, args)], cwd=workspace, input=input,
                          capture_output=True, text=True, timeout=240)


def everything_stored(db: Path) -> str:
    """Every value of every table of the store, as text."""
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(repr(row) for t in tables for row in conn.execute(f"select * from [{t}]"))
    finally:
        conn.close()


def files_holding(folder: Path, secret: str, skip: tuple[Path, ...] = ()) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not any(p.is_relative_to(s) for s in skip)
            and secret.encode() in p.read_bytes()]


PROPOSALS = ["x" * 30, "CRASH one", "CRASH two", "CRASH three", "x" * 20, "x" * 25, "x" * 28, "x" * 15, "x" * 35, "x" * 10]


def test_each_event_arrives_once_and_the_password_goes_nowhere(workspace, receiver):
    folder = recipe(workspace / "tagline", text="x" * 40 + "\n", proposals=[p + "\n" for p in PROPOSALS],
                    metric='kind = "command"\nrun = "sh {recipe}/score.sh {file}"\ngoal = "minimize"',
                    budget="experiments = 10\nmax_failures = 5")
    with (folder / "recipe.toml").open("a") as f:
        f.write(f'\n[notify]\nurls = ["{receiver.url()}", "{DOWN}"]\n'
                'on = ["new_best", "finished", "stopped", "failed", "failing", "spend_80"]\nfailing_after = 2\n')
    done = overnight(workspace, "run", folder, "--yes")
    assert done.returncode == 0, done.stderr  # the unreachable URL did not stop it
    assert no_traceback(done.stdout + done.stderr)
    assert "Kept 4 of 10 experiments" in done.stdout

    assert receiver.kinds() == Counter({"new best": 4, "is failing": 1, "used 80% of its budget": 1, "finished": 1})
    by_title = {p["title"]: p for p in receiver.posts}
    bests = [p["message"] for p in receiver.posts if "new best" in p["title"]]
    assert bests[0].startswith("Run 1 of 'tagline': experiment 1:1 scores 31 (baseline 41, gain +24.4%).")
    assert [b.splitlines()[-1] for b in bests] == [f"Apply it: overnight apply 1:{s}" for s in (1, 5, 8, 10)]
    failing = by_title["overnight: tagline is failing"]["message"]
    assert failing.startswith("Run 1 of 'tagline': 2 experiments in a row failed (last: crash, the command exited with code 3")
    assert failing.endswith("See why: overnight log 1")
    assert by_title["overnight: tagline used 80% of its budget"]["message"].startswith(
        "Run 1 of 'tagline' has used 8 of 10 experiments; best so far 16.")
    finished = by_title["overnight: tagline finished"]["message"]
    assert finished.startswith("Run 1 of 'tagline' finished: experiment budget reached (10). Kept 4 of 10; baseline 41 -> best 11 (gain +73.2%).")
    assert finished.endswith("Apply the best: overnight apply 1:10 (report: overnight report 1 --open)")
    assert all(p["type"] in ("success", "failure", "warning") for p in receiver.posts)
    assert {p["auth"] for p in receiver.posts} == {"Basic " + base64.b64encode(f"night:{PASSWORD}".encode()).decode()}

    # The unreachable URL: each failure said once, masked, and the run went on.
    failures = [line for line in done.stderr.splitlines() if "could not deliver" in line]
    assert len(failures) == 7 and all("json://127.0.0.1:1/down" in line for line in failures)
    assert PASSWORD not in done.stdout + done.stderr
    db = workspace / ".overnight" / "overnight.db"
    stored = everything_stored(db)
    assert PASSWORD not in stored and "json://***" in stored  # the recipe's text is kept, its URLs masked
    assert files_holding(workspace, PASSWORD, skip=(folder,)) == []


def test_the_persons_settings_a_failing_recipe_and_the_nights_digest(workspace, receiver):
    done = overnight(workspace, "config", "set", "notify.urls", receiver.url("mine"))
    assert done.returncode == 0, done.stderr
    done = overnight(workspace, "config", "set", "notify.on", "finished", "failed", "night_finished")
    assert done.returncode == 0, done.stderr
    shown = overnight(workspace, "config")
    assert f"night:****@127.0.0.1:{receiver.port}/mine" in shown.stdout and PASSWORD not in shown.stdout
    assert "# Where to send notifications" in shown.stdout  # the template's comments survived `set`

    tried = overnight(workspace, "config", "test")
    assert tried.returncode == 0 and tried.stdout.startswith("sent  json://night:****@")
    assert [p["title"] for p in receiver.posts] == ["overnight: a test notification"]
    receiver.posts.clear()

    fine = recipe(workspace / "fine", text="x" * 10 + "\n", proposals=["x" * 20 + "\n"])  # longer is better here
    broken = recipe(workspace / "broken", text="CRASH\n", proposals=[])
    done = overnight(workspace, "night", fine, broken, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    titles = [p["title"] for p in receiver.posts]
    assert sorted(titles) == ["overnight: broken failed", "overnight: fine finished", "overnight: the night is over (2 recipes)"]
    failed = next(p for p in receiver.posts if p["title"] == "overnight: broken failed")["message"]
    assert failed.startswith("Run 2 of 'broken' failed: The baseline could not be measured (crash)")
    digest = receiver.posts[-1]
    assert digest["title"] == "overnight: the night is over (2 recipes)"
    assert "fine    finished  run 1: kept 1 of 1" in digest["message"]
    assert "broken  failed" in digest["message"]
    [attached] = digest["attachments"]
    assert attached["filename"] == "night-1.html"
    assert b"<h1>overnight: night 1</h1>" in base64.b64decode(attached["base64"])
    assert PASSWORD not in done.stdout + done.stderr
    assert PASSWORD not in everything_stored(workspace / ".overnight" / "overnight.db")


def test_broken_settings_are_said_before_the_night(workspace):
    from overnight.core import settings

    settings.path().parent.mkdir(parents=True, exist_ok=True)
    settings.path().write_text('[notify]\nurls = ["ntfys://topic"]\non = ["finished", "new-best"]\n')
    fine = recipe(workspace / "fine", proposals=[])
    done = overnight(workspace, "night", fine, "--yes")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: {settings.path()}:3: [notify] on: unknown event 'new-best' (did you mean 'new_best'?); "
                                   f"events are {', '.join(settings.NOTIFY_EVENTS)}; fix it with `overnight config edit`.")
    done = overnight(workspace, "config", "set", "notify.failing_after", "soon")
    assert done.returncode == 1 and done.stderr.strip() == "Error: notify.failing_after must be a whole number, not 'soon'."
    done = overnight(workspace, "config", "set", "notify.color", "red")
    assert done.returncode == 1 and "There is no setting 'notify.color'" in done.stderr


def test_config_set_with_one_empty_value_clears_a_list(workspace):
    """`config set notify.urls ""` is how a shell says "no URLs": the list is emptied, not refused."""
    from overnight.core import settings

    assert overnight(workspace, "config", "set", "notify.urls", "ntfys://my-topic").returncode == 0
    done = overnight(workspace, "config", "set", "notify.urls", "")
    assert done.returncode == 0 and done.stdout.strip() == f"Set notify.urls in {settings.path()}.", done.stderr
    assert settings.notify()["urls"] == [] and "# Where to send notifications" in settings.path().read_text()
    tried = overnight(workspace, "config", "test")
    assert tried.returncode == 1 and "No notification URLs are set" in tried.stderr
    done = overnight(workspace, "config", "set", "notify.urls", "", "ntfys://my-topic")  # an empty URL among others is not one
    assert done.returncode == 1 and "must be a list of apprise URLs" in done.stderr
