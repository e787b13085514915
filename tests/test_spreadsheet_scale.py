"""A workbook the size of a person's model (bench/spreadsheet_scale.py measures it at 6,000
formulas): what compiling it leaves behind is freed before the run freezes what it set up,
a metric's compiled model is let go before the next target compiles the workbook again, and
a target refused on the way leaves the others measuring as before."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from overnight.core.contracts import MeasureRequest
from overnight.core.errors import OvernightError
from overnight.plugins import engine
from overnight.plugins.cell import CellMetric
from overnight.plugins.spreadsheet import SpreadsheetSurface
from tests.data.workbooks.kit import book, cached

MONTHS = 24
SEASON = {m: 1 + 0.1 * (m % 4 - 1.5) for m in range(1, 13)}


def person_model(folder: Path) -> SpreadsheetSurface:
    """Inputs, a lookup table, a row a month (a chain from the month before, a lookup, a
    trailing-year SUM) and a summary over whole columns of another sheet."""
    model = {"A1": "Month", "B1": "Units", "E1": "Profit", "F1": "Trailing year", "G1": "Loss", "B2": "=Inputs!B5"}
    for r in range(2, MONTHS + 2):
        model[f"A{r}"] = r - 1
        if r > 2:
            model[f"B{r}"] = f"=B{r - 1}*(1+Inputs!$B$3)"
        model[f"C{r}"] = f"=B{r}*Inputs!$B$2"
        model[f"D{r}"] = f"=C{r}*VLOOKUP(MOD(A{r}-1,12)+1,Data!$A$1:$B$12,2,FALSE)"
        model[f"E{r}"] = f"=D{r}-Inputs!$B$4"
        model[f"F{r}"] = f"=SUM(E{max(2, r - 11)}:E{r})"
        model[f"G{r}"] = f"=IF(F{r}<0,1,0)"
    last = MONTHS + 1
    book(folder / "model.xlsx", {
        "Inputs": {"A2": "Price", "B2": 20.0, "A3": "Growth", "B3": 0.01, "A4": "Fixed cost", "B4": 500,
                   "A5": "Start units", "B5": 100},
        "Data": {**{f"A{m}": m for m in SEASON}, **{f"B{m}": s for m, s in SEASON.items()}},
        "Model": model,
        "Summary": {"A1": "Total profit", "B1": f"=SUM(Model!E2:E{last})", "A2": "Worst year",
                    "B2": f"=MIN(Model!F2:F{last})", "A3": "Label", "B3": '=IF(B1>0,"profit","loss")'},
    })
    cells = [{"ref": "Inputs!B2", "min": 5, "max": 60, "step": 0.5}, {"ref": "Inputs!B3", "min": 0, "max": 0.05},
             {"ref": "Inputs!B4", "min": 0, "max": 2000, "step": 10}]
    return SpreadsheetSurface({"path": "model.xlsx", "cells": cells}, folder)


def expected(price: float, growth: float, fixed: float) -> tuple[float, float]:
    """The total profit and the worst trailing year, computed without the workbook."""
    profits, units = [], 100.0
    for month in range(1, MONTHS + 1):
        if month > 1:
            units *= 1 + growth
        profits.append(units * price * SEASON[(month - 1) % 12 + 1] - fixed)
    return sum(profits), min(sum(profits[max(0, i - 11):i + 1]) for i in range(MONTHS))


def measured(surface, metrics, folder: Path, price: float, growth: float, fixed: float):
    view = surface.view_from({"Inputs!B2": price, "Inputs!B3": growth, "Inputs!B4": fixed}, surface.read())
    work = folder / "work"
    work.mkdir(exist_ok=True)
    artifact = surface.materialize(view, work)
    return artifact, [m.measure(artifact, work, MeasureRequest(10, view=view)).value for m in metrics]


@pytest.fixture
def paused():
    """The cycle collector paused, as `overnight run` keeps it while it sets up (cli/run.py)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_persons_model_gives_what_its_formulas_mean_in_the_metric_the_guard_and_the_copy(tmp_path):
    surface = person_model(tmp_path)
    metric, guard = CellMetric({"ref": "Summary!B1"}, tmp_path), CellMetric({"ref": "Summary!B2"}, tmp_path)
    metric.prepare(surface)
    guard.prepare(surface)
    for inputs in [(20.0, 0.01, 500), (35.5, 0.03, 1500), (5, 0, 2000)]:
        artifact, values = measured(surface, [metric, guard], tmp_path, *inputs)
        assert values == pytest.approx(expected(*inputs))
        assert cached(artifact, "Summary", "B1") == pytest.approx(expected(*inputs)[0])  # readers without an engine


def test_setting_up_with_the_collector_paused_leaves_nothing_of_the_compile_to_collect(tmp_path, paused):
    # Whatever is left when the run's setup ends is frozen for the whole night.
    surface = person_model(tmp_path)
    for ref in ("Summary!B1", "Summary!B2"):
        CellMetric({"ref": ref}, tmp_path).prepare(surface)
        assert not gc.isenabled()  # paused again, as the run left it
        assert gc.collect() == 0


def test_the_copys_engine_leaves_nothing_to_collect_either(tmp_path, paused):
    surface = person_model(tmp_path)
    recalculation = engine.Recalculation(surface.source(), [c.ref for c in surface.cells()])
    assert recalculation.fed
    assert not gc.isenabled()
    assert gc.collect() == 0


def test_the_next_target_compiles_after_the_model_of_the_first_is_let_go(tmp_path, monkeypatch):
    surface = person_model(tmp_path)
    metric = CellMetric({"ref": "Summary!B1"}, tmp_path)
    metric.prepare(surface)
    first = weakref.ref(metric.model.engine)
    held = []
    compile_ = engine._compile

    def compiling(path, targets):
        gc.collect()
        held.append(first() is not None)
        return compile_(path, targets)

    monkeypatch.setattr(engine, "_compile", compiling)
    guard = CellMetric({"ref": "Summary!B2"}, tmp_path)
    guard.prepare(surface)
    assert held == [False]  # a large workbook is never held twice
    assert guard.model is metric.model
    assert measured(surface, [metric, guard], tmp_path, 20.0, 0.01, 500)[1] == pytest.approx(expected(20.0, 0.01, 500))


def test_a_target_refused_after_the_model_was_let_go_leaves_the_others_measuring(tmp_path):
    surface = person_model(tmp_path)
    metric = CellMetric({"ref": "Summary!B1"}, tmp_path)
    metric.prepare(surface)
    with pytest.raises(OvernightError, match='Summary!B3 in model.xlsx computes to the text "profit"'):
        CellMetric({"ref": "Summary!B3"}, tmp_path).prepare(surface)  # refused once compiled
    assert metric.model.targets == [metric.target]
    _, values = measured(surface, [metric], tmp_path, 35.5, 0.03, 1500)
    assert values == pytest.approx([expected(35.5, 0.03, 1500)[0]])
    guard = CellMetric({"ref": "Summary!B2"}, tmp_path)
    guard.prepare(surface)  # and the next target is added as if nothing had been refused
    assert measured(surface, [metric, guard], tmp_path, 5, 0, 2000)[1] == pytest.approx(expected(5, 0, 2000))
