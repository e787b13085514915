"""The TUI, read as a person does: `?` lists every key of the screen on top, and one review state shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from overnight.tui.app import OvernightApp
from overnight.tui.dashboard import Dashboard
from overnight.tui.detail import Detail
from overnight.tui.keys_screen import KeysScreen
from tests.test_tui import SIZE, open_best, open_dashboard, screen_text, until
from tests.tui_support import copy_store, run_once


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return run_once(tmp_path_factory.mktemp("made"))


@pytest.fixture
def db(made, workspace) -> Path:
    return copy_store(made[1], workspace / "store.db")


async def test_question_mark_lists_every_key_of_the_screen_on_top(db):
    app = OvernightApp(db)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_dashboard(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, KeysScreen), what="the keys screen")
        dashboard_keys = dict(app.screen.rows)
        assert "Keys of Dashboard" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, Dashboard), what="back on the dashboard")

        await open_best(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, KeysScreen), what="the detail's keys")
        keys = dict(app.screen.rows)
        # The detail's own keys, hidden ones included (1-5 pick a tab), and the app's.
        for key in ("a", "r", "s", "m", "b", "t", "1", "5", "esc", "ctrl+p"):
            assert key in keys, key
        assert keys != dashboard_keys
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, Detail), what="back on the detail")


async def test_the_detail_shows_one_current_review_state(db):
    import sqlite3

    conn = sqlite3.connect(db)
    exp = conn.execute("select id, run_id from experiments where seq = 3").fetchone()
    for action, note in (("starred", "nice"), ("rejected", "too short after all")):
        conn.execute("insert into reviews (run_id, experiment_id, recipe, action, note) values (?, ?, 'greeting', ?, ?)",
                     (exp[1], exp[0], action, note))
    conn.commit()
    conn.close()
    app = OvernightApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_best(pilot)
        await until(pilot, lambda: "rejected" in screen_text(app), what="the review state")
        head = str(app.screen.query_one("#head").render())
        assert "✗ rejected: too short after all (latest of 2; history under Why)" in head
        assert "★ starred" not in head  # the history is in the Why tab, not the head


async def test_a_stop_dialog_closes_when_its_run_ends(db):
    from overnight.tui.confirm import Confirm

    app = OvernightApp(db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_dashboard(pilot)
        dashboard = app.screen
        dashboard.timer.pause()  # this test plays the polls itself
        await until(pilot, lambda: dashboard.run is not None and not dashboard.polling, what="the first poll")
        finished = dict(dashboard.run)
        dashboard.show({**finished, "status": "running"}, [], True)  # as a poll of a live run shows it
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, Confirm) and app.screen.query_one("#yes"), what="the stop dialog")
        dashboard.show(finished, [], False)  # the next poll: the run has ended
        await until(pilot, lambda: isinstance(app.screen, Dashboard), what="the dialog gone")
        await until(pilot, lambda: any("there is nothing left to stop" in n.message for n in app._notifications), what="the toast")
