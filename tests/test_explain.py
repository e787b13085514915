"""`overnight explain`: what each kept change still contributes at the end of a run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from overnight.core.explain import revert, stored
from overnight.core.store import Store
from tests.conftest import write

RECIPE = """
[recipe]
name = "words"

[surface]
kind = "text"
path = "notes.txt"

[metric]
kind = "python"
file = "score.py"

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
experiments = 10
"""

# One point for each of three words the notes should mention, however often.
SCORE = """
def score(path):
    words = set(open(path).read().split())
    return len(words & {"alpha", "beta", "gamma"})
"""

NOTES = "# notes\nintro\nmiddle\nend\n"


def recipe(folder: Path, proposals: list[tuple[str, str, str]]) -> Path:
    lines = [json.dumps({"replace": [old, new], "rationale": why}) for old, new, why in proposals]
    write(folder, {"recipe.toml": RECIPE, "score.py": SCORE, "proposals.jsonl": "\n".join(lines) + "\n"})
    (folder / "notes.txt").write_text(NOTES)
    return folder


def db(workspace: Path) -> Path:
    return workspace / ".overnight" / "overnight.db"


def test_a_change_that_a_later_one_subsumes_is_named_so_it_can_be_dropped(workspace, cli):
    folder = recipe(workspace / "words", [
        ("intro\n", "intro\nalpha\n", "mention alpha"),
        ("middle\n", "middle\nbeta\n", "mention beta"),
        # Brings gamma, and alpha again: the first change is now redundant.
        ("end\n", "end\nalpha gamma\n", "mention gamma next to alpha"),
    ])
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "Kept 3 of 3 experiments" in result.output

    result = cli("explain", "--yes")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Measuring the best again, then without each of its 3 kept changes..." in out
    assert "Run 1 of 'words': 3 kept changes from baseline 0 to best 3 (maximize); the best measured again: 3." in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert lines["1"].split()[-7:] == ["+1", "3", "0", "no", "contribution:", "drop", "it"]
    assert lines["2"].split()[-3:] == ["+1", "2", "+1"]
    assert lines["3"].split()[-3:] == ["+1", "2", "+1"]
    assert "Change #1 (mention alpha) adds nothing at the end: the best does as well without it." in out

    # The table is kept, for the TUI to show without measuring again.
    store = Store(db(workspace), readonly=True)
    rows = stored(store, 1)
    assert [(r.seq, r.gain, r.score_without, r.contribution, r.status) for r in rows] == [
        (1, 1.0, 3.0, 0.0, "measured"), (2, 1.0, 2.0, 1.0, "measured"), (3, 1.0, 2.0, 1.0, "measured")]
    assert [r.verdict for r in rows] == ["no contribution: drop it", "", ""]
    # The user's file was never touched.
    assert (folder / "notes.txt").read_text() == NOTES


def test_a_change_a_later_one_rewrote_is_skipped_with_its_reason(workspace, cli):
    folder = recipe(workspace / "words", [
        ("intro\n", "intro alpha\n", "mention alpha"),
        ("intro alpha\n", "intro alpha beta\n", "and beta on the same line"),
    ])
    assert cli("run", folder, "--yes").exit_code == 0
    result = cli("explain", "1", "--yes")
    assert result.exit_code == 0, result.output
    assert "a later change rewrote its lines: it cannot be left out alone" in result.output
    rows = stored(Store(db(workspace), readonly=True), 1)
    assert [(r.seq, r.status, r.contribution) for r in rows] == [(1, "skipped", None), (2, "measured", 1.0)]


def test_revert_puts_back_only_the_lines_of_one_step():
    before = "a\nb\nc\nd\n"
    after = "a\nB\nc\nd\n"  # the step: b -> B
    best = "a\nB\nc\nD\ne\n"  # later steps changed d and added e
    assert revert(before, after, best) == "a\nb\nc\nD\ne\n"
    # A step that removed a line gets it back in its place.
    assert revert("a\nb\nc\n", "a\nc\n", "a\nc\nz\n") == "a\nb\nc\nz\n"
    # A later step rewrote B: it cannot be undone alone.
    assert revert(before, after, "a\nBB\nc\nd\n") is None


def test_a_run_with_no_keeps_has_nothing_to_explain(workspace, cli):
    folder = recipe(workspace / "words", [("intro\n", "intro\nnothing useful\n", "a line that scores nothing")])
    assert cli("run", folder, "--yes").exit_code == 0
    result = cli("explain")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Run 1 of 'words' kept no change: its best is the baseline, so there is nothing to explain."


def test_a_run_whose_candidates_are_missing_says_so_and_measures_nothing(workspace, cli):
    folder = recipe(workspace / "words", [("intro\n", "intro\nalpha\n", "mention alpha")])
    assert cli("run", folder, "--yes").exit_code == 0
    with sqlite3.connect(db(workspace)) as conn:
        conn.execute("delete from candidates")
    result = cli("explain", "--yes")
    assert result.exit_code == 1
    assert result.output.startswith("Error: The candidate of experiment 0 of run 1 is missing from the store ")
    assert "so its change cannot be left out; nothing was measured." in result.output
    assert "Traceback" not in result.output
    assert stored(Store(db(workspace), readonly=True), 1) == []


def test_parents_that_loop_are_one_sentence_not_a_walk_that_never_ends(workspace, cli):
    folder = recipe(workspace / "words", [("intro\n", "intro\nalpha\n", "mention alpha"),
                                          ("intro\nalpha\n", "intro\nalpha\nbeta\n", "mention beta")])
    assert cli("run", folder, "--yes").exit_code == 0
    with sqlite3.connect(db(workspace)) as conn:  # a store edited by hand: 1 and 2 each the other's parent
        (one,), (two,) = conn.execute("select id from experiments where seq in (1, 2) order by seq").fetchall()
        conn.execute("update experiments set parent = ? where id = ?", [two, one])
        conn.execute("update experiments set parent = ? where id = ?", [one, two])
    result = cli("explain", "--yes")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "do not lead back to the run's baseline" in result.output and "nothing was measured." in result.output

def test_an_unknown_run_is_one_sentence(workspace, cli):
    folder = recipe(workspace / "words", [])
    assert cli("run", folder, "--yes").exit_code == 0
    result = cli("explain", "7")
    assert result.exit_code == 1
    assert "There is no run '7'" in result.output


def test_a_search_that_rewrites_every_value_is_explained_value_by_value(workspace, cli):
    # Two steps that each rewrite all three keys: the first cannot be left out alone, but each
    # value can be put back on its own; `c` never mattered to the score.
    write(workspace / "tune", {
        "settings.toml": "a = 0.0\nb = 0.0\nc = 0.0\n",
        "score.py": "import tomllib\ndef score(path):\n    v = tomllib.load(open(path, 'rb'))\n"
                    "    return 100 - (v['a'] - 3) ** 2 - (v['b'] - 5) ** 2\n",
        "proposals.jsonl": "\n".join(json.dumps({"view": v, "rationale": r}) for v, r in [
            ("a = 2.0\nb = 4.0\nc = 1.0\n", "a=2, b=4, c=1"), ("a = 3.0\nb = 5.0\nc = 2.0\n", "a=3, b=5, c=2")]) + "\n",
        "recipe.toml": """
            [recipe]
            name = "tune"
            [surface]
            kind = "config"
            path = "settings.toml"
            params = [{ key = "a", min = 0, max = 10 }, { key = "b", min = 0, max = 10 }, { key = "c", min = 0, max = 10 }]
            [metric]
            kind = "python"
            file = "score.py"
            [agent]
            kind = "scripted"
            file = "proposals.jsonl"
        """,
    })
    assert cli("run", workspace / "tune", "--yes").exit_code == 0
    result = cli("explain", "--yes")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Each changed value put back as it was in the baseline, the others left as in the best:" in out
    assert "a later change rewrote its lines: it cannot be left out alone" in out
    values = {r.rationale: (r.score_without, r.contribution, r.verdict) for r in stored(Store(db(workspace), readonly=True), 1)
              if r.seq is None}
    assert values == {
        "a: 0 -> 3, put back": (91.0, 9.0, ""),
        "b: 0 -> 5, put back": (75.0, 25.0, ""),
        "c: 0 -> 2, put back": (100.0, 0.0, "no contribution: drop it"),
    }
    assert "c: 0 -> 2, put back" in out and "keep the baseline's value" in out


@pytest.fixture
def three_keeps(workspace, cli) -> Path:
    """The run of the first story, made outside the TUI test's event loop."""
    folder = recipe(workspace / "words", [
        ("intro\n", "intro\nalpha\n", "mention alpha"),
        ("middle\n", "middle\nbeta\n", "mention beta"),
        ("end\n", "end\nalpha gamma\n", "mention gamma next to alpha"),
    ])
    assert cli("run", folder, "--yes").exit_code == 0
    return folder


async def test_the_tui_shows_the_same_table_without_measuring(workspace, cli, three_keeps):
    import time

    from overnight.tui.app import OvernightApp
    from overnight.tui.contributions import Contributions
    from overnight.tui.dashboard import Dashboard
    from tests.tui_support import screen_text

    async def until(pilot, predicate, what):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if predicate():
                return
            await pilot.pause(0.05)
        raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")

    app = OvernightApp(db(workspace))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, Dashboard), "the dashboard")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, Contributions) and app.screen.rows is not None, "the table")
        assert "Not explained yet: `overnight explain 1` measures the best" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, Dashboard), "the dashboard again")

    assert cli("explain", "--yes").exit_code == 0
    app = OvernightApp(db(workspace))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, Dashboard), "the dashboard")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, Contributions) and app.screen.rows, "the table")
        text = screen_text(app)
        assert "best measured again: 3" in text
        assert "mention alpha" in text and "no contribution: drop it" in text
        assert "mention gamma next to alpha" in text
