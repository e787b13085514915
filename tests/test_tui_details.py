"""What a person reads in the TUI, at 80x24 and at 120x40: toasts beside dialogs, not over
them, and paths in them broken at slashes; wrapped diff lines that still say added or
removed; every column of the experiment table on screen, the reason included.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from textual.geometry import Region
from textual.widgets._toast import Toast

from overnight.tui.app import OvernightApp
from overnight.tui.confirm import Confirm
from overnight.tui.detail import Detail
from overnight.tui.diff_view import coloured
from tests.test_tui import open_best, table, until
from tests.tui_support import GREETING, recipe, run_recipe, screen_text, trust

SIZES = [(80, 24), (120, 40)]

LONG_LINE = ("Hello there my dear friend, how are you today? I hope this long message finds you well "
             "and that the weather where you are is kinder than it is here, where it has rained all week.")


def lines_of(app, region) -> list[str]:
    """The screen's text inside `region`, line by line."""
    screen = screen_text(app).splitlines()
    screen += [""] * (app.size.height - len(screen))
    return [screen[y][region.x:region.right].ljust(region.width) for y in range(region.y, region.bottom)]


def toasts(app) -> list[Toast]:
    return [t for t in app.screen.query(Toast) if t.region.area]


def cut_only_at_spaces_and_slashes(pieces: list[str], message: str) -> list[str]:
    """The pieces of `message` (as a toast shows it) that are not whole words or whole path parts."""
    words = message.split()
    bad = []
    for piece in pieces:
        for token in piece.split():
            whole = any(_parts(word, token) for word in words)
            if not whole:
                bad.append(token)
    return bad


def _parts(word: str, token: str) -> bool:
    """True when `token` is `word` cut only just after slashes."""
    cuts = {0, len(word)} | {i + 1 for i, c in enumerate(word) if c == "/"}
    return any(word[a:b] == token for a in cuts for b in cuts if a < b)


# -- toasts and dialogs ----------------------------------------------------------------


@pytest.fixture
def deep(workspace, cli) -> tuple[Path, Path]:
    """A trusted run whose recipe lives deep in folders with long names, as real projects do."""
    folder = recipe(workspace / "customer-communications-experiments" / "greetings_for_the_spring_campaign")
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    trust(folder)
    return folder, db


@pytest.mark.parametrize("size", SIZES)
async def test_a_toast_waits_for_the_dialog_to_close_and_breaks_paths_at_slashes(deep, size):
    folder, db = deep
    app = OvernightApp(db)
    async with app.run_test(size=size, notifications=True) as pilot:
        await open_best(pilot)
        app.notify("Said before the dialog opened.", timeout=30)
        await until(pilot, lambda: len(toasts(app)) == 1, what="a toast")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, Confirm), what="the apply preview")
        said = f"Run 1 finished: the agent has no more proposals. Its recipe is {folder / 'recipe.toml'}."
        app.notify(said, title="Run ended", timeout=30)
        await pilot.pause(0.5)
        dialog = app.screen.query_one(".dialog")
        assert not [t for t in toasts(app) if t.region.overlaps(dialog.region)], "a toast covers the dialog"
        assert not [t for s in app.screen_stack for t in s.query(Toast) if t.region.area], "a toast beside it"
        assert dialog.border_subtitle == "2 messages wait until this closes"
        assert "Write experiment 1:3 to your file?" in screen_text(app)
        body = [line.strip() for line in lines_of(app, app.screen.query_one(".dialog-body").content_region)]
        path = body[:next(i for i, line in enumerate(body) if line.startswith("---"))]
        assert "".join(path) == str(folder / "greeting.txt")  # the file it would write, whole
        assert cut_only_at_spaces_and_slashes(path, str(folder / "greeting.txt")) == [], path

        await pilot.press("y")  # the dialog closes: what waited is shown, and what the apply says
        await until(pilot, lambda: isinstance(app.screen, Detail) and len(toasts(app)) == 3, what="the three toasts")
        await until(pilot, lambda: (folder / "greeting.txt").read_text() != GREETING, what="the apply")
        for toast in toasts(app):
            message = toast._notification.message
            strips = toast.render_lines(Region(0, 0, *toast.outer_size))
            shown = [strip.text.replace("▌", " ").strip() for strip in strips]
            shown = [line for line in shown if line and line != toast._notification.title]
            original = " ".join(message.split())
            assert "".join(shown).replace(" ", "") == original.replace(" ", ""), "the toast lost words"
            assert cut_only_at_spaces_and_slashes(shown, original) == [], f"a path is cut mid-name:\n{shown}"
        assert any(str(folder).split("/")[-1] in t._notification.message for t in toasts(app))


# -- diff lines keep their mark when they wrap ---------------------------------------------


def test_a_wrapped_line_of_a_stored_diff_keeps_its_mark_without_colour():
    diff = f"--- a\n+++ b\n@@ -1 +1 @@\n-{GREETING.strip()}\n+{LONG_LINE}\n"
    console = Console(width=40, file=io.StringIO(), color_system=None, record=True)
    console.print(coloured(diff))
    shown = console.export_text().splitlines()
    added = [line for line in shown if not line.startswith(("---", "+++", "@@", "-"))]
    assert len(added) > 3 and all(line.startswith("+") for line in added), shown
    assert all(line.startswith("+↳") for line in added[1:])
    assert " ".join(line.removeprefix("+↳").removeprefix("+") for line in added).split() == LONG_LINE.split()


@pytest.fixture
def long_line(workspace, cli) -> Path:
    folder = recipe(workspace / "greeting", [{"view": LONG_LINE + "\n", "rationale": "a longer letter"}])
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    return db


@pytest.mark.parametrize("size", SIZES)
async def test_every_screen_line_of_an_added_line_reads_as_added(long_line, size):
    app = OvernightApp(long_line)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: len(table(app).rows) == 2, what="the dashboard")
        assert table(app).current["seq"] == 1
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, Detail) and "+++ #1" in screen_text(app), what="the diff")
        body = app.screen.query_one(".diff-body")
        shown = [line.rstrip() for line in lines_of(app, body.content_region)]
        added = [line for line in shown if line and not line.startswith(("---", "+++", "@@", "-"))]
        assert len(added) >= 2, shown  # the line wraps at this width
        assert all(line.startswith("+") for line in added), shown
        removed = [line for line in shown if line.startswith("-") and not line.startswith("---")]
        assert removed == ["-" + GREETING.strip()]

        await pilot.press("v")  # side by side: the new side's lines all carry the mark too
        await until(pilot, lambda: "side by side" in screen_text(app), what="the side-by-side diff")
        await pilot.pause(0.2)
        shown = [line.rstrip() for line in lines_of(app, body.content_region)]
        x = shown[0].index("#1")  # where the new side's cells begin
        new_side = [line[x:] for line in shown[2:] if line[x:].strip()]
        assert len(new_side) >= 3 and all(line.startswith("+") for line in new_side), shown
        assert [line[:2] for line in new_side] == ["+ "] + ["+↳"] * (len(new_side) - 1)


# -- every column of the experiment table on screen --------------------------------------------


@pytest.fixture
def wordy(workspace, cli) -> Path:
    """Rationales as models write them: a whole sentence each."""
    proposals = [
        {"replace": ["my dear friend", "friend"],
         "rationale": "Drop the filler words, since a reader skims the opening line first"},
        {"replace": ["Hello there", "Hello there and welcome"],
         "rationale": "A warmer opening makes the reader feel expected and at home"},
    ]
    folder = recipe(workspace / "greeting", proposals)
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    return db


@pytest.mark.parametrize("size", SIZES)
async def test_the_reason_column_is_on_screen_beside_a_long_rationale(wordy, size):
    app = OvernightApp(wordy)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: len(table(app).rows) == 3 and len(table(app).ledger.text) == 3, what="the table")
        t = table(app)
        await pilot.pause(0.2)
        region = t.content_region
        assert region.right <= app.size.width
        lines = lines_of(app, region)
        x = lines[0].rindex(" reason") + 1  # the reason's column, up to the table's right edge
        room = region.width - x - 1  # less the scrollbar
        assert room >= 20, lines[0]
        for row in t.visible_rows():
            line = next(line for line in lines[1:] if re.match(rf"\s*{row['seq']} ", line))
            reason = row["reason"]
            assert reason and line[x:].startswith(reason[:room - 1]), (line, reason)
            if row["status"] != "baseline":
                assert row["rationale"][:10] in line


# -- the plot's axis -------------------------------------------------------------------


def test_the_experiment_axis_counts_in_even_round_steps():
    from overnight.tui.score_plot import x_ticks

    assert x_ticks(7) == [0, 2, 4, 6]
    assert x_ticks(4) == [0, 1, 2, 3, 4]
    assert x_ticks(80) == [0, 20, 40, 60, 80]
    assert x_ticks(100_000) == [0, 20_000, 40_000, 60_000, 80_000, 100_000]
    assert x_ticks(0) == [0]


@pytest.fixture
def seven(workspace, cli) -> Path:
    db = workspace / "store.db"
    run_recipe(cli, recipe(workspace / "greeting", timeout_candidate=True), db)
    return db


async def test_the_plot_of_seven_experiments_reads_0_2_4_6(seven):
    app = OvernightApp(seven)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(table(app).rows) == 8, what="the table")
        await pilot.pause(0.3)
        lines = screen_text(app).splitlines()
        axis = next(i for i, line in enumerate(lines) if "└┬" in line)
        assert lines[axis + 1].split() == ["0", "2", "4", "6"], lines[axis + 1]


# -- the frontier ----------------------------------------------------------------------


@pytest.fixture
def led(workspace, cli) -> Path:
    """Two kept candidates that lead on different train examples: 'sorry' for #1; 'refund' and 'thanks' for #2."""
    import json

    from tests.conftest import write
    from tests.test_tui import EXAMPLES_SCORE

    proposals = [{"view": "Say sorry.\n", "rationale": "apologise"},
                 {"view": "A refund, and thanks.\n", "rationale": "refund and thank"}]
    folder = write(workspace / "support", {
        "reply.txt": "Write to the customer.\n",
        "score.py": EXAMPLES_SCORE,
        "proposals.jsonl": "".join(json.dumps(p) + "\n" for p in proposals),
        "recipe.toml": """
            [recipe]
            name = "support"

            [surface]
            kind = "text"
            path = "reply.txt"

            [metric]
            kind = "python"
            file = "score.py"

            [agent]
            kind = "scripted"
            file = "proposals.jsonl"

            [budget]
            experiments = 2
            """,
    })
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    shown = cli("show", "1:2", "--frontier", "--db", db)
    assert "  #2    leads   2: refund, thanks" in shown.output and "  #1    leads   1: sorry" in shown.output
    return db


@pytest.mark.parametrize("size", SIZES)
async def test_capital_f_shows_which_candidates_lead_on_which_examples(led, size):
    app = OvernightApp(led)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: len(table(app).rows) == 3, what="the table")
        await pilot.press("F")
        await until(pilot, lambda: getattr(app.screen, "front", None) is not None, what="the frontier")
        assert app.screen.front == [(2, ["refund", "thanks"]), (1, ["sorry"])]
        text = screen_text(app)
        assert "2 candidates lead on train examples" in text
        assert re.search(r"\b2\s+2\s+refund, thanks", text) and re.search(r"\b1\s+1\s+sorry", text), text
        await pilot.press("escape")
        assert type(app.screen).__name__ == "Dashboard"
