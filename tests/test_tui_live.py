"""A run started in another terminal, watched and steered from the TUI.

Given the TUI open on an empty workspace, when `overnight run` starts in a
process of its own, the run appears and its experiments arrive as they are
recorded; pause, resume, steer and stop reach that process through the store.
"""

from __future__ import annotations

import sqlite3

from overnight.tui.app import OvernightApp
from overnight.tui.ask import Ask
from overnight.tui.confirm import Confirm
from overnight.tui.dashboard import Dashboard
from tests.test_control import QUESTION_MARKS, start_run
from tests.test_tui import SIZE, flat, rows, table, until
from tests.tui_support import GREETING, recipe


def footer(app) -> list[str]:
    """What the footer offers now."""
    return [str(key.description) for key in app.screen.query("FooterKey")]


def notices(app) -> list[str]:
    """The messages the app has shown as notifications (toasts wrap among other text on screen)."""
    return [n.message for n in app._notifications]


def store_says(db, sql: str):
    try:
        return rows(db, sql)
    except sqlite3.OperationalError:
        return []


async def test_a_run_in_another_process_appears_live_and_obeys_the_controls(workspace):
    folder = recipe(workspace / "greeting", QUESTION_MARKS, slow=0.3, experiments=40)
    db = workspace / ".overnight" / "overnight.db"
    app = OvernightApp(db)
    proc = None
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: "No runs yet" in flat(app), what="the welcome")
            proc = start_run(folder, db)

            # It appears by itself, and new experiments keep arriving.
            await until(pilot, lambda: isinstance(app.screen, Dashboard) and len(table(app).rows) >= 2,
                        seconds=20, what="the run to appear")
            seen = len(table(app).rows)
            await until(pilot, lambda: len(table(app).rows) >= seen + 2, what="more experiments, live")
            assert "greeting · run 1 · running" in flat(app)
            assert table(app).current["seq"] == max(r["seq"] for r in table(app).rows)  # the newest is followed

            await pilot.press("p")
            await until(pilot, lambda: "greeting · run 1 · paused" in flat(app), what="the pause")
            assert store_says(db, "select status, control from runs") == [{"status": "paused", "control": "pause"}]
            await until(pilot, lambda: "resume" in footer(app) and "pause" not in footer(app), what="the resume key")

            await pilot.press("p")
            await until(pilot, lambda: "greeting · run 1 · running" in flat(app), what="the run to go on")
            assert store_says(db, "select control from runs") == [{"control": None}]

            await pilot.press("g")
            await until(pilot, lambda: isinstance(app.screen, Ask), what="the steering line")
            await pilot.press(*"fewer question marks", "enter")
            await until(pilot, lambda: store_says(db, "select kind, text from notes") == [
                {"kind": "steer", "text": "fewer question marks"}], what="the steering note")
            assert any("does not read notes (only the llm and command agents do)" in m for m in notices(app))  # scripted

            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, Confirm), what="the stop confirmation")
            await pilot.press("y")
            await until(pilot, lambda: "stopped: stopped on request" in flat(app), seconds=20, what="the stop")
            await until(pilot, lambda: not {"pause", "resume", "stop"} & set(footer(app)), what="the controls to go")
        proc.wait(timeout=20)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
    run = rows(db, "select * from runs")[0]
    assert (run["status"], run["stop_reason"]) == ("stopped", "stopped on request")
    assert (folder / "greeting.txt").read_text() == GREETING
