"""A long run in the TUI: numbers for every row, text for the rows in view, new rows in their places.

The dashboard holds a run as a ledger (compact arrays) and asks the store for the
rationale and reason of the rows it is about to show. These runs are real runs with
more experiments recorded afterwards through the store, as the loop records them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from overnight.core.contracts import STATUSES
from overnight.core.store import Store
from overnight.tui.app import OvernightApp
from overnight.tui.data import TEXT_FIRST
from overnight.tui.ledger import TEXT_KEPT, Ledger
from overnight.tui.score_plot import MOST_POINTS, ScorePlot
from tests.test_tui import SIZE, open_dashboard, table, until
from tests.tui_support import copy_store, run_once, screen_text


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return run_once(tmp_path_factory.mktemp("made"))


def record(db: Path, seqs: range, score=lambda seq: 40.0 + seq % 9, status: str = "discard") -> None:
    """More experiments of run 1, recorded through the store as the loop records them."""
    store = Store(db)
    for seq in seqs:
        value = score(seq)
        store.record_experiment(1, seq=seq, status=status, score=value, delta=value - 47.0,
                                reason=f"no better than the best, reason {seq}", rationale=f"idea number {seq}")
    store.close()


async def test_a_long_run_reads_the_text_of_the_rows_that_come_into_view(made, workspace):
    db = copy_store(made[1], workspace / "store.db")
    record(db, range(7, 7 + TEXT_FIRST + 500))
    newest = 6 + TEXT_FIRST + 500
    app = OvernightApp(db)
    async with app.run_test(size=SIZE) as pilot:
        t = await open_dashboard(pilot)
        assert len(t.rows) == newest + 1
        assert re.search(rf"{newest} · discard .* idea number {newest} +no better than", screen_text(app))
        assert len(t.ledger.text) == TEXT_FIRST  # the newest rows' text, not the whole run's
        await pilot.press("end")  # the oldest rows: their text is read as they come into view
        await until(pilot, lambda: "drop the filler" in screen_text(app), what="the first experiments' text")
        assert t.current["seq"] == 0
        await pilot.press("s")  # best score first: rows from all over the run
        await until(pilot, lambda: "a shorter quest" in screen_text(app), what="the best rows' text")
        assert len(t.ledger.text) <= TEXT_KEPT


async def test_new_rows_of_a_live_run_take_their_places_in_a_sorted_table(made, workspace):
    db = copy_store(made[1], workspace / "store.db")
    record(db, range(7, 300))
    app = OvernightApp(db)
    async with app.run_test(size=SIZE) as pilot:
        t = await open_dashboard(pilot)
        await pilot.press("s")  # best score first (the goal is to minimize)
        await pilot.press("down", "down")
        under = t.current["id"]
        record(db, range(300, 340), score=lambda seq: 20.0 + seq % 5)  # better than any before
        await until(pilot, lambda: len(t.rows) == 340, what="the new experiments")
        shown = [(r["seq"], r["score"]) for r in t.visible_rows()]
        ordered = sorted(shown, key=lambda p: (p[1] is None, p[1] if p[1] is not None else 0, p[0]))
        assert shown == ordered
        assert shown[0][1] == 20.0 and t.current["id"] == under  # the cursor stays on its row
        await pilot.press("k")  # a filter on a sorted live table takes new rows too
        kept = len(t.visible_rows())
        record(db, range(340, 345), score=lambda seq: 19.0, status="keep")
        record(db, range(345, 350), score=lambda seq: 18.0)
        await until(pilot, lambda: len(t.rows) == 350, what="more experiments")
        assert [r["seq"] for r in t.visible_rows()][:6] == [340, 341, 342, 343, 344, 3]
        assert len(t.visible_rows()) == kept + 5


def test_the_ledger_keeps_numbers_in_order_of_arrival_and_knows_when_seq_is_not():
    ledger = Ledger(1)
    ledger.extend([(1, 0, "baseline", 10.0, 0.0), (2, 1, "keep", 9.0, -1.0), (3, 3, "crash", None, None)])
    assert ledger.in_order and list(ledger.seqs) == [0, 1, 3]
    new, changed = ledger.add_rows([
        {"id": 5, "seq": 2, "status": "a status from the future", "score": 8.0, "delta": -2.0, "rationale": "r", "reason": ""},
        {"id": 2, "seq": 1, "status": "keep", "score": 9.0, "delta": -1.0, "rationale": "kept", "reason": "better"},
    ])
    assert (new, changed) == ([3], [1])
    assert not ledger.in_order and list(ledger.seqs) == [0, 1, 3, 2]
    assert ledger.row(3) == {"id": 5, "run_id": 1, "seq": 2, "status": "a status from the future", "score": 8.0,
                             "delta": -2.0, "rationale": "r", "reason": ""}
    assert ledger.row(2)["score"] is None and ledger.row(1)["reason"] == "better"
    ledger.add_rows([{"id": 3, "seq": 3, "status": "crash", "score": None, "delta": None, "rationale": "", "reason": "x"}])
    assert len(ledger) == 4 and ledger.index_of(4) is None and ledger.index_of(5) == 3
    ledger.add_text({"id": i, "rationale": "", "reason": ""} for i in range(10, 10 + TEXT_KEPT + 5))
    assert len(ledger.text) == TEXT_KEPT and 5 not in ledger.text  # the oldest looked at went first


def test_a_best_line_of_thousands_of_steps_is_drawn_from_its_columns():
    ledger = Ledger(1)
    ledger.extend((i + 1, i, "keep", 10_000.0 - i, None) for i in range(20_000))
    xs, ys = _series(ledger)["best"]
    assert len(xs) <= 2 * MOST_POINTS + 2
    assert (xs[0], ys[0]) == (0, 10_000.0) and (xs[-1], ys[-1]) == (19_999, 10_000.0 - 19_999)
    assert all(a >= b for a, b in zip(ys, ys[1:])) and xs == sorted(xs)
    kept = _series(ledger)["kept"]
    assert len(kept[0]) == MOST_POINTS + 1 and kept[0][0] == 0 and kept[0][-1] == 19_999


def test_thousands_of_discards_are_thinned_along_the_run_and_every_failure_is_marked():
    statuses = ["discard"] * 30_000
    for i in range(0, 30_000, 1000):
        statuses[i] = "crash"  # 30 crashes, no score
    statuses[0], statuses[29_999] = "baseline", "keep"
    ledger = Ledger(1)
    ledger.extend((i + 1, i, s, None if s == "crash" else float(i % 97), None) for i, s in enumerate(statuses))
    series = _series(ledger)
    xs, ys = series["discarded"]
    assert MOST_POINTS - 40 <= len(xs) <= MOST_POINTS and xs == sorted(xs)
    assert xs[0] < 100 and xs[-1] > 29_800  # from one end of the run to the other
    assert all(y == x % 97 for x, y in zip(xs, ys))
    assert series["failed"] == (list(range(1000, 30_000, 1000)), [0.0] * 29)  # along the bottom
    assert series["kept"] == ([0, 29_999], [0.0, float(29_999 % 97)])


def test_a_status_comes_as_its_name_or_its_code_alike():
    by_name, by_code = Ledger(1), Ledger(1)
    rows = [(1, 0, "baseline", 5.0, 0.0), (2, 1, "discard", 6.0, 1.0), (3, 2, "newer-status", None, None)]
    by_name.extend(rows)
    by_code.take([(i, seq, STATUSES.index(s) if s in STATUSES else s, score, delta) for i, seq, s, score, delta in rows])
    assert [by_name.row(i) for i in range(3)] == [by_code.row(i) for i in range(3)]
    assert by_code.status(2) == "newer-status"


def _series(ledger: Ledger) -> dict:
    plot = ScorePlot(goal="minimize")
    plot.ledger = ledger
    return plot.series()
