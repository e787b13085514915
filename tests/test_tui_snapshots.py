"""Snapshots of the dashboard and the detail screen at 80x24, as plain text.

Plain text (not SVG) so a change reads as a diff of what a person sees; the
times the store records are fixed first, so the screens do not move from one
run to the next. After an intended change of the screens, rewrite them with
OVERNIGHT_UPDATE_SNAPSHOTS=1 (an SVG of each is written beside it, to look at).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from overnight.tui.app import OvernightApp
from overnight.tui.detail import Detail
from tests.test_tui import SIZE, open_best, open_dashboard, until
from tests.tui_support import copy_store, run_once, screen_text, settle_times

SNAPSHOTS = Path(__file__).parent / "snapshots"


async def steady(pilot) -> None:
    """Waits until the screen stops changing and its footer is drawn (it is rebuilt as keys come and go)."""
    before = None
    for _ in range(50):
        now = screen_text(pilot.app)
        if now == before and "^p menu" in now:
            return
        before = now
        await pilot.pause(0.2)
    raise AssertionError(f"the screen never settled:\n{now}")


def matches_snapshot(app, name: str) -> None:
    text = screen_text(app) + "\n"
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("OVERNIGHT_UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        (SNAPSHOTS / f"{name}.svg").write_text(app.export_screenshot(title=name), encoding="utf-8")
        if not os.environ.get("OVERNIGHT_UPDATE_SNAPSHOTS"):
            pytest.fail(f"{path} did not exist and was written: look at it, then run the tests again")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"the screen differs from {path}:\n{text}"


@pytest.fixture(scope="module")
def settled(tmp_path_factory) -> Path:
    """Every status a run can show, the slow one (a timeout) included, with fixed times."""
    _, db = run_once(tmp_path_factory.mktemp("snap"), timeout_candidate=True, seconds=1)
    settle_times(db)
    return db


@pytest.fixture
def db(settled, workspace) -> Path:
    return copy_store(settled, workspace / "store.db")


async def test_the_dashboard_at_80x24(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_dashboard(pilot)
        await until(pilot, lambda: "x crash/timeout" in screen_text(app) and "7 of 7 experiments" in screen_text(app), what="the plot")
        await steady(pilot)
        matches_snapshot(app, "dashboard")


async def test_the_detail_screen_at_80x24(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_best(pilot)
        await until(pilot, lambda: isinstance(app.screen, Detail) and "+Hello there friend" in screen_text(app), what="the diff")
        await steady(pilot)
        matches_snapshot(app, "detail")


async def test_the_detail_side_by_side_at_80x24(db):
    app = OvernightApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_best(pilot)
        await pilot.press("v")
        await until(pilot, lambda: "side by side" in screen_text(app), what="the side by side diff")
        await steady(pilot)
        matches_snapshot(app, "detail_side_by_side")
