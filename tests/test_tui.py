"""The review TUI, driven with Textual's Pilot on stores made by real runs.

Each test is a small story: given a run of the greeting recipe (shorter is
better; one keep, one discard, a crash, an invalid edit, a duplicate), when a
person presses these keys, then the screen shows this and the store says that.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from textual.css.query import NoMatches

from overnight.tui.app import OvernightApp
from overnight.tui.compare import Compare
from overnight.tui.confirm import Confirm
from overnight.tui.ask import Ask
from overnight.tui.dashboard import Dashboard
from overnight.tui.detail import Detail
from overnight.tui.experiment_table import ExperimentTable
from overnight.tui.runs_screen import RunsScreen
from overnight.tui.score_plot import ScorePlot
from tests.tui_support import GREETING, copy_store, recipe, run_once, run_recipe, screen_text, trust

SIZE = (80, 24)
BEST = "Hello there friend, how are you?\n"


async def until(pilot, predicate, seconds: float = 10.0, what: str = "the screen to catch up"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except NoMatches:
            pass  # a screen that was just pushed has not composed its widgets yet
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


def flat(app) -> str:
    """The screen's words in one line: wrapped sentences (and those in notifications) read whole."""
    return " ".join(screen_text(app).replace("▌", " ").split())


def rows(db: Path, sql: str, args=()) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def table(app) -> ExperimentTable:
    return app.screen.query_one(ExperimentTable)


async def open_dashboard(pilot) -> ExperimentTable:
    # Every experiment read, and drawn: on a busy machine the rows arrive a refresh before the screen shows them.
    await until(pilot, lambda: isinstance(pilot.app.screen, Dashboard) and len(table(pilot.app).rows) >= 7
                and "exps" in screen_text(pilot.app), what="the dashboard with every experiment")
    return table(pilot.app)


async def open_best(pilot) -> Detail:
    """From the dashboard: sort by score (best first) and open the top row."""
    await open_dashboard(pilot)
    await pilot.press("s")
    assert table(pilot.app).current["seq"] == 3
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, Detail) and pilot.app.screen.exp is not None, what="the detail")
    return pilot.app.screen


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return run_once(tmp_path_factory.mktemp("made"))


@pytest.fixture
def db(made, workspace) -> Path:
    """A copy of a finished run's store for this test alone (its recipe folder is shared: read only)."""
    return copy_store(made[1], workspace / "store.db")


@pytest.fixture
def own(workspace, cli) -> tuple[Path, Path]:
    """A run of this test's own, for actions that write the recipe's file; its recipe is trusted."""
    folder = recipe(workspace / "greeting")
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    trust(folder)
    return folder, db


# -- runs and the dashboard ------------------------------------------------------------


async def test_the_only_run_opens_on_its_dashboard_with_plot_and_table(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        t = await open_dashboard(pilot)
        text = screen_text(app)
        assert "greeting · run 1 · finished: the agent has no more proposals" in text
        assert "↓ minimize  47 → 33 (+29.8%)" in text
        assert "exps" in text and "6/20" in text
        assert [r["seq"] for r in t.visible_rows()] == [6, 5, 4, 3, 2, 1, 0]  # newest first
        assert [r["status"] for r in t.visible_rows()] == ["duplicate", "invalid", "crash", "keep", "discard", "keep", "baseline"]
        series = app.screen.query_one(ScorePlot).series()
        assert series["kept"] == ([0, 1, 3], [47.0, 39.0, 33.0])
        assert series["discarded"] == ([2], [63.0])
        assert series["failed"] == ([4], [33.0])  # a crash has no score: marked along the bottom
        assert series["best"][1][-1] == 33.0 and series["best"][0][-1] == 6
        assert "● kept" in text and "x crash/timeout" in text and "· discarded" in text
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


@pytest.fixture
def two_runs(workspace, cli) -> Path:
    folder = recipe(workspace / "greeting")
    other = recipe(workspace / "other", [{"replace": ["friend", "pal"], "rationale": "a shorter word"}], name="other")
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    run_recipe(cli, other, db)
    return db


async def test_the_runs_list_shows_every_run_and_opens_the_chosen_one(two_runs):
    db = two_runs
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        from textual.widgets import DataTable

        await until(pilot, lambda: app.screen.query_one("#runs", DataTable).row_count == 2, what="the runs")
        runs = app.screen.query_one("#runs", DataTable)
        assert [str(c) for c in runs.get_row_at(0)][:3] == ["2", "other", "finished"]
        assert [str(c) for c in runs.get_row_at(0)][4:] == ["1", "47 → 44", "+6.4%"]
        assert [str(c) for c in runs.get_row_at(1)][4:] == ["6", "47 → 33", "+29.8%"]
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, Dashboard), what="the dashboard")
        assert app.screen.run_id == 1
        await pilot.press("escape")
        await pilot.click("#runs", offset=(2, 1))  # the mouse: the first run's row
        await pilot.click("#runs", offset=(2, 1))
        await until(pilot, lambda: isinstance(app.screen, Dashboard) and app.screen.run_id == 2, what="run 2")


async def test_kept_only_filter_and_sort_each_take_one_key(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        t = await open_dashboard(pilot)
        await pilot.press("k")
        assert [r["seq"] for r in t.visible_rows()] == [3, 1, 0]
        assert "2 of 6 experiments · kept · newest first" in screen_text(app)  # as the CLI counts: no baseline
        await pilot.press("k")
        assert len(t.visible_rows()) == 7
        await pilot.press("f", "f")
        assert [r["status"] for r in t.visible_rows()] == ["discard"]
        await pilot.press("f")
        assert [r["status"] for r in t.visible_rows()] == ["invalid", "crash"]
        await pilot.press("f")
        assert [r["status"] for r in t.visible_rows()] == ["duplicate"]
        await pilot.press("f")
        assert t.filter == "all"
        await pilot.press("s")  # best score first (the goal is to minimize)
        assert [r["seq"] for r in t.visible_rows()][:4] == [3, 1, 0, 2]
        await pilot.press("s")
        assert [r["seq"] for r in t.visible_rows()][:4] == [3, 1, 0, 2]  # the delta agrees
        assert "best delta first" in screen_text(app)
        await pilot.click(ExperimentTable, offset=(10, 0))  # a click on the status heading sorts by status
        assert t.sort == "status"
        assert [r["status"] for r in t.visible_rows()][:2] == ["baseline", "keep"]
        await pilot.click(ExperimentTable, offset=(10, 3))  # a click on a row moves the cursor there...
        assert t.cursor == 2
        await pilot.click(ExperimentTable, offset=(10, 3))  # ...and a second one opens it
        await until(pilot, lambda: isinstance(app.screen, Detail), what="the detail")


async def test_the_detail_shows_the_diff_both_ways_and_what_happened(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        detail = await open_best(pilot)
        text = screen_text(app)
        assert "#3 ● keep · score 33 (gain +14 vs baseline)" in text  # minimize: smaller is a gain
        assert "rationale: a shorter question" in text
        assert "reason: beats the best (39) by 6" in text
        assert "-Hello there my dear friend, how are you today?" in text
        assert "+Hello there friend, how are you?" in text
        await pilot.press("b")  # against its parent, the first keep
        text = screen_text(app)
        assert "--- #1 (parent)" in text and "-Hello there friend, how are you today?" in text
        await pilot.press("v")  # side by side
        text = screen_text(app)
        assert "Diff vs parent, side by side" in text
        # Each side wraps at 80 columns: the old line on the left, the new one on the right.
        assert "1  - Hello there friend, how are        1  + Hello there friend, how are" in text
        assert "-↳you today?                            +↳you?" in text  # each continuation keeps its mark
        await pilot.press("b", "v")
        assert "--- #0 (baseline)" in screen_text(app)
        await pilot.press("t", "t", "t")  # the fourth tab, by key
        await until(pilot, lambda: "length 33" in screen_text(app), what="the traces tab")
        assert "Measurement log (tail)" in screen_text(app)
        await pilot.press("5")
        await until(pilot, lambda: "No model calls in this experiment." in screen_text(app), what="the LLM calls tab")
        await pilot.click("#tabs Tab#--content-tab-tab-why")
        await until(pilot, lambda: "Rationale" in screen_text(app), what="the why tab")
        assert "keep: beats the best (39) by 6" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, Dashboard) and detail is not app.screen


# -- review actions ----------------------------------------------------------------------


async def test_apply_shows_the_diff_then_writes_the_file_and_keeps_the_old_one(own):
    folder, db = own
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, Confirm), what="the confirmation")
        text = screen_text(app)
        assert "Write experiment 1:3 to your file?" in text
        assert "-Hello there my dear friend, how are you today?" in text and "+Hello there friend, how are you?" in text
        assert (folder / "greeting.txt").read_text() == GREETING  # nothing yet
        await pilot.press("y")
        await until(pilot, lambda: (folder / "greeting.txt").read_text() == BEST, what="the file to be written")
        await until(pilot, lambda: "✓ applied" in screen_text(app), what="the review to show")
    review = rows(db, "select * from reviews")
    assert [(r["action"], r["path"]) for r in review] == [("applied", str(folder / "greeting.txt"))]
    assert Path(review[0]["backup"]).read_text() == GREETING


async def test_apply_cancelled_writes_nothing(own):
    folder, db = own
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, Confirm), what="the confirmation")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, Detail), what="the detail again")
        await pilot.pause(0.3)
    assert (folder / "greeting.txt").read_text() == GREETING
    assert rows(db, "select * from reviews") == []


async def test_reject_needs_a_note_and_records_it_for_later_runs(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="the note")
        await pilot.press("enter")  # no note: refused, the dialog stays
        assert isinstance(app.screen, Ask) and "Say why in a few words" in screen_text(app)
        await pilot.press(*"too curt")
        await pilot.press("enter")
        await until(pilot, lambda: "✗ rejected: too curt" in screen_text(app), what="the rejection")
    assert [(r["action"], r["note"]) for r in rows(db, "select * from reviews")] == [("rejected", "too curt")]
    assert [(n["kind"], n["text"]) for n in rows(db, "select * from notes")] == [
        ("review", "A reviewer rejected experiment 1:3 (a shorter question): too curt")]


async def test_star_with_a_note(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="the note")
        await pilot.press(*"short and kind", "enter")
        await until(pilot, lambda: "★ starred: short and kind" in screen_text(app), what="the star")
    assert [(r["action"], r["note"]) for r in rows(db, "select * from reviews")] == [("starred", "short and kind")]
    assert rows(db, "select kind from notes") == [{"kind": "review"}]


async def test_star_cancelled_records_nothing(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="the note")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, Detail), what="the detail")
    assert rows(db, "select * from reviews") == []


async def test_remeasure_runs_the_metric_again_and_shows_the_spread(made, db):
    trust(made[0])
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="how many times")
        await pilot.press("backspace", *"abc", "enter")
        assert "Write a whole number from 1 to 50." in screen_text(app)
        await pilot.press(*["backspace"] * 3, "2", "enter")
        await until(pilot, lambda: "re-measured: 33 all 2 times (recorded 33)" in screen_text(app), seconds=20, what="the re-measurement")
    review = rows(db, "select * from reviews")
    assert [(r["action"], json.loads(r["note"])) for r in review] == [("remeasured", [33.0, 33.0])]


async def test_compare_two_experiments_side_by_side(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        t = await open_dashboard(pilot)
        await pilot.press("s")  # best first: #3, then #1
        await pilot.press("c")
        assert "#3 marked" in screen_text(app)
        await pilot.press("down", "c")
        await until(pilot, lambda: isinstance(app.screen, Compare) and app.screen.loaded, what="the comparison")
        text = screen_text(app)
        assert "run 1: #1 and #3" in text
        assert "drop the filler words" in text and "a shorter question" in text
        assert "- Hello there friend, how are" in text and "+ Hello there friend, how are" in text
        await pilot.press("v")
        assert "--- #1" in screen_text(app) and "+Hello there friend, how are you?" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, Dashboard) and not t.marked


async def test_the_command_palette_offers_the_screen_keys(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        t = await open_dashboard(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"kept")
        await pilot.pause(0.5)
        assert "Kept" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: t.filter == "kept", what="the kept filter")


async def test_no_color_is_respected_and_marks_still_differ(db, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_dashboard(pilot)
        assert app.no_color
        assert any(type(f).__name__ in ("Monochrome", "NoColor") for f in app._filters)
        text = screen_text(app)
        for mark in ("● keep", "· discard", "✗ crash", "? invalid", "= duplicate", "○ baseline"):
            assert mark in text


# -- a run started here: overnight run --tui ------------------------------------------------


async def test_run_with_tui_runs_the_loop_in_a_worker_with_the_dashboard_attached(workspace):
    from overnight.core import recipe as recipes
    from overnight.core.runner import build
    from overnight.core.store import Store

    folder = recipe(workspace / "greeting")
    db = workspace / "store.db"
    store = Store(db)
    app = OvernightApp(db, setup=build(recipes.load(folder), store))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: isinstance(app.screen, Dashboard), what="the dashboard to open by itself")
        await until(pilot, lambda: app.summary is not None, seconds=30, what="the run to end")
        await until(pilot, lambda: "finished" in screen_text(app) and len(table(app).rows) == 7, what="the final state")
        assert app.summary.kept == 2 and app.summary.best == 33.0
        await pilot.press("q")
    assert rows(db, "select status from runs") == [{"status": "finished"}]
    store.close()


async def test_quitting_the_tui_stops_its_run_cleanly(workspace):
    from overnight.core import recipe as recipes
    from overnight.core.runner import build
    from overnight.core.store import Store

    marks = [{"replace": ["?", "?" * i], "rationale": f"more question marks {i}"} for i in range(2, 30)]
    folder = recipe(workspace / "greeting", marks, slow=0.3, experiments=40)
    db = workspace / "store.db"
    store = Store(db)
    app = OvernightApp(db, setup=build(recipes.load(folder), store))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: isinstance(app.screen, Dashboard) and len(table(app).rows) >= 2, what="a few experiments")
        await pilot.press("q")
        await until(pilot, lambda: app.summary is not None, seconds=20, what="the run to stop")
    run = rows(db, "select * from runs")[0]
    assert (run["status"], run["stop_reason"]) == ("stopped", "interrupted by quitting the TUI")
    assert run["experiments"] < 40
    store.close()


# -- examples and model calls ---------------------------------------------------------------

EXAMPLES_SCORE = '''
WANTED = {"sorry": ("train", "a late parcel"), "refund": ("train", "charged twice"),
          "thanks": ("train", "praise for the team"), "soon": ("holdout", "asks when")}

def score(path):
    text = open(path).read().lower()
    examples = [{"id": word, "split": split, "input": ticket, "output": text.strip(),
                 "expected": f"says {word!r}", "score": 1.0 if word in text else 0.0,
                 "feedback": "" if word in text else f"never says {word!r}"}
                for word, (split, ticket) in WANTED.items()]
    train = [e["score"] for e in examples if e["split"] == "train"]
    return {"score": sum(train) / len(train), "examples": examples}
'''


@pytest.fixture
def llm_run(workspace, cli, llm_server, monkeypatch) -> Path:
    """A run of the `llm` agent through the loopback server, scored by examples."""
    from tests.conftest import write

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-tui-0123456789abcdef")
    llm_server.add_rule("# The current best version", "HYPOTHESIS: apologise first\n```\nSay sorry to the customer.\n```\n")
    folder = write(workspace / "support", {
        "reply.txt": "Write to the customer.\n",
        "score.py": EXAMPLES_SCORE,
        "recipe.toml": f"""
            [recipe]
            name = "support"

            [surface]
            kind = "text"
            path = "reply.txt"

            [metric]
            kind = "python"
            file = "score.py"

            [agent]
            kind = "llm"
            model = "openai/agent-model"
            api_base = "{llm_server.url}"

            [budget]
            experiments = 1
        """,
    })
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    return db


async def test_examples_fail_first_and_model_calls_show_tokens_cost_and_messages(llm_run):
    app = OvernightApp(llm_run)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: isinstance(app.screen, Dashboard) and len(table(app).rows) == 2, what="the run")
        await pilot.press("enter")  # the newest: the model's proposal
        await until(pilot, lambda: isinstance(app.screen, Detail) and app.screen.exp is not None, what="the detail")
        assert "rationale: apologise first" in flat(app)

        await pilot.click("#tabs Tab#--content-tab-tab-examples")
        await until(pilot, lambda: "train: 1 of 3 passed · holdout: 0 of 1 passed" in flat(app), what="the examples")
        examples = app.screen.query_one("ExamplesView")
        assert [(e["split"], e["example_id"], e["score"]) for e in examples.examples] == [
            ("train", "refund", 0.0), ("train", "thanks", 0.0), ("holdout", "soon", 0.0), ("train", "sorry", 1.0)]
        assert "feedback: never says 'refund'" in flat(app)

        await pilot.click("#tabs Tab#--content-tab-tab-calls")
        calls = app.screen.query_one("LLMCallsView")
        await until(pilot, lambda: len(calls.calls) == 1 and "1 calls" in flat(app), what="the model calls")
        call = calls.calls[0]
        assert (call["role"], call["model"]) == ("agent", "openai/agent-model")
        tokens = call["prompt_tokens"] + call["completion_tokens"]
        assert tokens > 0 and f"1 calls, {tokens} tokens, $0.0000" in flat(app)
        assert "reply: HYPOTHESIS: apologise first" in flat(app)


async def test_leaving_a_screen_while_its_work_goes_on_is_fine(made, db):
    """Escape during a re-measurement: the result is still recorded and announced, nothing breaks."""
    trust(made[0])
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="how many times")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, Detail), what="the dialog to close")
        await pilot.press("escape")  # while the metric runs
        assert isinstance(app.screen, Dashboard)
        await until(pilot, lambda: any(n.message.startswith("Measured 3 of 3 times again: 33 all 3 times")
                                       for n in app._notifications), seconds=20, what="the result")
        await pilot.press("k")
        assert [r["seq"] for r in table(app).visible_rows()] == [3, 1, 0]
    assert [json.loads(r["note"]) for r in rows(db, "select note from reviews")] == [[33.0, 33.0, 33.0]]
