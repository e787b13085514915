"""Real little runs for the TUI tests: a text file, a command metric, scripted proposals.

The metric counts the characters of the file (shorter is better); a candidate
holding CRASH makes it fail, one holding SLEEP makes it run past the time limit.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

from rich.console import Console

from tests.conftest import write

SCORE = """
import os, sys, time
text = open(sys.argv[1]).read()
time.sleep(float(os.environ.get("SLOW", "0")))
if "CRASH" in text:
    sys.exit("the scorer fell over on purpose")
if "SLEEP" in text:
    time.sleep(30)
print("length", len(text))
"""

GREETING = "Hello there my dear friend, how are you today?\n"

PROPOSALS = [
    {"replace": ["my dear friend", "friend"], "rationale": "drop the filler words"},
    {"replace": ["Hello there", "Hello there and a very warm welcome"], "rationale": "a warmer opening"},
    {"replace": ["how are you today", "how are you"], "rationale": "a shorter question"},
    {"replace": ["Hello", "CRASH"], "rationale": "break the scorer"},
    {"replace": ["not in the text", "x"], "rationale": "edit text that is not there"},
    {"view": "Hello there friend, how are you today?\n", "rationale": "the first idea again"},
]


def recipe(folder: Path, proposals=PROPOSALS, *, name: str = "greeting", slow: float = 0.0,
           seconds: float = 5, experiments: int = 20, timeout_candidate: bool = False) -> Path:
    items = list(proposals)
    if timeout_candidate:
        items.append({"replace": ["Hello", "SLEEP"], "rationale": "wait far too long"})
    return write(folder, {
        "recipe.toml": f"""
            [recipe]
            name = "{name}"
            summary = "a shorter greeting"

            [surface]
            kind = "text"
            path = "greeting.txt"

            [metric]
            kind = "command"
            run = "python3 {{recipe}}/score.py {{file}}"
            goal = "minimize"
            env = {{ SLOW = "{slow}" }}

            [agent]
            kind = "scripted"
            file = "proposals.jsonl"

            [budget]
            experiments = {experiments}
            per_experiment_seconds = {seconds}
            max_failures = 50
        """,
        "greeting.txt": GREETING,
        "score.py": SCORE,
        "proposals.jsonl": "\n".join(json.dumps(p) for p in items) + "\n",
    })


def run_recipe(cli, folder: Path, db: Path, *extra) -> None:
    result = cli("run", folder, "--yes", "--db", db, *extra)
    assert result.exit_code == 0, result.output


def settle_times(db: Path) -> None:
    """Fixes every time the store records, so screenshots do not change from one run to the next."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("update runs set started_at = 1767261600, updated_at = 1767263400, ended_at = 1767263400, "
                     "seconds = 1800")
        conn.execute("update experiments set started_at = 1767261600 + seq * 60, seconds = 0.25")
    conn.close()


def screen_text(app) -> str:
    """The screen as plain text, the way a person reads it (no colours)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens, simplify=True))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def run_once(base: Path, **options) -> tuple[Path, Path]:
    """A real run made once for many tests (outside any test's own workspace)."""
    import pytest
    from click.testing import CliRunner

    from overnight.cli.main import cli as group

    folder = recipe(base / "greeting", **options)
    db = base / "store.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OVERNIGHT_HOME", str(base / "home"))  # trust goes here, never to the user's folder
        mp.chdir(base)
        result = CliRunner().invoke(group, ["run", str(folder), "--yes", "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder, db


def trust(folder: Path) -> None:
    """Trusts the recipe as a person would (`overnight recipes trust DIR --yes`), in this test's home."""
    from click.testing import CliRunner

    from overnight.cli.main import cli as group

    result = CliRunner().invoke(group, ["recipes", "trust", str(folder), "--yes"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def copy_store(source: Path, target: Path) -> Path:
    """A consistent copy of a store (through SQLite, so nothing still in its log is lost)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target
