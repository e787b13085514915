"""The TUI given what it did not expect: no store, a newer store, a missing candidate,
a file changed on disk, a store locked by a writer. Each time: a clear sentence, no
crash, and nothing of the user's changed."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from overnight.tui.app import OvernightApp
from overnight.tui.ask import Ask
from overnight.tui.confirm import Confirm
from overnight.tui.dashboard import Dashboard
from overnight.tui.detail import Detail
from overnight.tui.experiment_table import ExperimentTable
from overnight.tui.runs_screen import RunsScreen
from tests.test_tui import BEST, SIZE, flat, open_best, open_dashboard, rows, until
from tests.tui_support import GREETING, copy_store, recipe, run_once, run_recipe, screen_text, trust


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return run_once(tmp_path_factory.mktemp("made"))


@pytest.fixture
def db(made, workspace) -> Path:
    return copy_store(made[1], workspace / "store.db")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_an_empty_workspace_says_how_to_start_and_then_shows_the_first_run(workspace, cli):
    db = workspace / ".overnight" / "overnight.db"
    folder = recipe(workspace / "greeting")
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "No runs yet" in screen_text(app), what="the welcome")
        text = screen_text(app)
        assert "overnight demo" in text and "overnight run RECIPE" in text
        await pilot.pause(0.6)
        assert not db.exists() and not db.parent.exists()  # looking creates nothing
        result = await asyncio.to_thread(cli, "run", folder, "--yes", "--db", db)
        assert result.exit_code == 0, result.output
        await until(pilot, lambda: isinstance(app.screen, Dashboard), what="the first run to appear")
        await until(pilot, lambda: len(app.screen.query_one(ExperimentTable).rows) == 7, what="its experiments")


async def test_a_store_written_by_a_newer_version_is_named_and_left_alone(db):
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("insert into _sqlite_migrations (migration_set, name, applied_at) values ('overnight', '999_from_the_future', 'x')")
    conn.close()
    before = digest(db)
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "Error:" in screen_text(app), what="the error")
        text = flat(app)
        assert "was written by a newer version of overnight (migration 999_from_the_future)" in text
        assert "Nothing was changed." in text and "Press q to quit." in text
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("q")
    assert digest(db) == before


async def test_a_file_that_is_not_a_store_is_named(workspace):
    db = workspace / "notes.db"
    db.write_text("these are my notes, not a database\n")
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "Error:" in screen_text(app), what="the error")
        assert "Cannot open the store" in flat(app)
    assert db.read_text() == "these are my notes, not a database\n"


async def test_an_experiment_whose_candidate_is_missing_shows_the_recorded_diff_and_refuses_to_act(made, workspace):
    folder, source = made
    db = copy_store(source, workspace / "store.db")
    best = rows(db, "select candidate from experiments where seq = 3")[0]["candidate"]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("delete from candidates where digest = ?", [best])
    conn.close()
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        text = flat(app)
        assert "The candidate of experiment 3 is missing from the store. Showing the diff the run recorded" in text
        assert "+Hello there friend, how are you?" in text  # the diff the run recorded
        await pilot.press("a")
        await until(pilot, lambda: "Not applied The candidate of experiment 3 is missing from the store." in flat(app),
                    what="the refusal")
        assert not isinstance(app.screen, Confirm)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="how many times")
        await pilot.press("enter")
        await until(pilot, lambda: "Not re-measured The candidate of experiment 3 is missing from the store; it cannot "
                    "be measured again." in flat(app), what="the refusal")
    assert rows(db, "select * from reviews") == []
    assert (folder / "greeting.txt").read_text() == GREETING


@pytest.fixture
def own(workspace, cli) -> tuple[Path, Path]:
    folder = recipe(workspace / "greeting")
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    trust(folder)
    return folder, db


async def test_apply_is_refused_when_the_file_changed_on_disk(own):
    folder, db = own
    (folder / "greeting.txt").write_text("Hi, I edited this myself.\n")
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("a")
        await until(pilot, lambda: "Not applied" in screen_text(app), what="the refusal")
        text = flat(app)
        assert "changed since run 1 began, so applying could undo your edits; nothing was written." in text
        assert "If you are sure: overnight apply 1:3 --force" in text
        assert isinstance(app.screen, Detail)
    assert (folder / "greeting.txt").read_text() == "Hi, I edited this myself.\n"
    assert rows(db, "select * from reviews") == []
    assert BEST not in (folder / "greeting.txt").read_text()


async def test_remeasure_and_apply_refuse_a_recipe_changed_after_it_was_trusted(own):
    """The TUI cannot ask on the terminal it draws on: it says how to trust the recipe, and runs nothing."""
    folder, db = own
    (folder / "score.py").write_text((folder / "score.py").read_text() + "\nprint('and one more thing')\n")
    refusal = (f"Recipe 'greeting' runs code and is not trusted as it is now (new, or changed since you trusted it), "
               f"so nothing was run: review and trust it with `overnight recipes trust {folder}`.")
    app = OvernightApp(db)

    def said(title: str) -> bool:
        return any((n.title, n.message) == (title, refusal) for n in app._notifications) and title in flat(app)

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="how many times")
        await pilot.press("enter")
        await until(pilot, lambda: said("Not re-measured"), what="the refusal to measure")
        await pilot.press("a")
        await until(pilot, lambda: said("Not applied"), what="the refusal to apply")
        assert isinstance(app.screen, Detail)
    assert rows(db, "select * from reviews") == []
    assert (folder / "greeting.txt").read_text() == GREETING

async def test_a_store_locked_by_a_writer_for_a_moment_is_caught_up_with(db):
    """Another process holds the write lock for about a second and adds an experiment meanwhile."""
    app = OvernightApp(db)
    held = threading.Event()

    def writer():
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("begin exclusive")
        row = conn.execute("select * from experiments where seq = 2").fetchone()
        names = [d[0] for d in conn.execute("select * from experiments limit 0").description]
        values = dict(zip(names, row), id=None, seq=7, rationale="written while the store was locked")
        conn.execute(f"insert into experiments ({', '.join(names)}) values ({', '.join('?' * len(names))})",
                     [values[n] for n in names])
        held.set()
        time.sleep(1.2)
        conn.execute("commit")
        conn.close()

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        table = await open_dashboard(pilot)
        thread = threading.Thread(target=writer)
        thread.start()
        await asyncio.to_thread(held.wait, 5)
        await pilot.press("k")  # the UI answers while the store is locked
        assert [r["seq"] for r in table.visible_rows()] == [3, 1, 0]
        await pilot.press("k", "enter")
        await until(pilot, lambda: isinstance(app.screen, Detail) and app.screen.exp is not None, what="the detail")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, Ask), what="the note")
        await pilot.press(*"fine", "enter")  # a write while another writer holds the lock: it waits its turn
        await asyncio.to_thread(thread.join, 10)
        await until(pilot, lambda: "★ starred: fine" in screen_text(app), what="the star after the lock")
        await pilot.press("escape")
        await until(pilot, lambda: 7 in [r["seq"] for r in table.visible_rows()], what="the new experiment")
        assert "written while th" in screen_text(app)  # the rationale, shortened to leave the reason room
    assert [(r["action"], r["note"]) for r in rows(db, "select * from reviews")] == [("starred", "fine")]


async def test_a_run_whose_process_died_is_shown_so_and_offers_no_controls(workspace):
    import signal

    from tests.test_control import QUESTION_MARKS, start_run, wait_for

    folder = recipe(workspace / "greeting", QUESTION_MARKS, slow=0.3, experiments=40)
    db = workspace / "store.db"
    proc = start_run(folder, db)
    await asyncio.to_thread(wait_for, lambda: db.exists() and rows(db, "select count(*) n from experiments")[0]["n"] >= 2)
    proc.send_signal(signal.SIGKILL)  # it never gets to record that it stopped
    await asyncio.to_thread(proc.wait, 10)
    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "greeting · run 1 · died (resume with: overnight run greeting --resume)" in flat(app), what="the dead run")
        await pilot.press("p")  # not offered, and pressing it does nothing
        await pilot.pause(0.3)
        keys = [str(k.description) for k in app.screen.query("FooterKey")]
        assert "pause" not in keys and "stop" not in keys
    assert rows(db, "select control from runs") == [{"control": None}]
