"""The `cell` metric: a real formula engine recalculates the workbook after the inputs change.
The model is compiled once per run; formula errors are crashes that name the cell; what the
engine cannot compute is a clear error before the run starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from overnight.core.contracts import MeasureRequest
from overnight.core.errors import OvernightError
from overnight.plugins.cell import CellMetric
from overnight.plugins.spreadsheet import SpreadsheetSurface
from tests.data.core.kit import experiments, no_traceback
from tests.data.workbooks.kit import book, recipe, sha

MODEL = {
    "💡 Inputs": {"A1": "Price", "B1": 10, "A2": "Units", "B2": 4, "A3": "Plan", "B3": "monthly"},
    "Model": {
        "A1": "Revenue", "B1": "='💡 Inputs'!B1*'💡 Inputs'!B2*IF('💡 Inputs'!B3=\"yearly\",11,12)",
        "A2": "Cost per unit", "B2": "=100/('💡 Inputs'!B2-3)",
        "A3": "Profit", "B3": "=B1-B2*'💡 Inputs'!B2",
        "A4": "Margin check", "B4": "=B1/('💡 Inputs'!B1-90)",
    },
}
CELLS = [
    {"ref": "'💡 Inputs'!B1", "min": 1, "max": 100},
    {"ref": "'💡 Inputs'!B2", "min": 1, "max": 20, "integer": True},
    {"ref": "'💡 Inputs'!B3", "choices": ["monthly", "yearly"]},
]


def prepared(folder: Path, ref: str, sheets=MODEL, cells=CELLS):
    book(folder / "model.xlsx", sheets)
    surface = SpreadsheetSurface({"path": "model.xlsx", "cells": [dict(c) for c in cells]}, folder)
    metric = CellMetric({"ref": ref}, folder)
    metric.prepare(surface)
    return surface, metric


def measure(surface, metric, folder: Path, **values):
    view = surface.view_from({f"'💡 Inputs'!{k}": v for k, v in values.items()}, surface.read())
    work = folder / "work"
    work.mkdir(exist_ok=True)
    artifact = surface.materialize(view, work)
    return metric.measure(artifact, work, MeasureRequest(10, view=view))


def test_the_value_is_the_engine_recalculation_with_the_new_inputs(tmp_path):
    surface, metric = prepared(tmp_path, "Model!B3")
    m = measure(surface, metric, tmp_path, B1=12.5, B2=7, B3="yearly")
    assert m.ok
    assert m.value == pytest.approx(12.5 * 7 * 11 - 100 / (7 - 3) * 7)
    m = measure(surface, metric, tmp_path, B1=12.5, B2=7, B3="monthly")
    assert m.value == pytest.approx(12.5 * 7 * 12 - 100 / (7 - 3) * 7)


def test_the_model_is_compiled_once_and_only_the_inputs_change(tmp_path, monkeypatch):
    import formulas

    built = []
    original = formulas.ExcelModel

    class Counting(original):
        def from_ranges(self, *ranges):  # the metric's compile (a copy's recalculation loads the whole book)
            built.append(ranges)
            return super().from_ranges(*ranges)

    monkeypatch.setattr(formulas, "ExcelModel", Counting)
    surface, metric = prepared(tmp_path, "Model!B1")
    assert len(built) == 1
    # The workbook is not read again: each measurement only sets the inputs of the compiled model.
    values = [measure(surface, metric, tmp_path, B1=p, B2=5).value for p in (2, 3, 4.5)]
    (tmp_path / "model.xlsx").rename(tmp_path / "elsewhere.xlsx")
    request = MeasureRequest(10, view="'💡 Inputs'!B1 = 8\n'💡 Inputs'!B2 = 5\n'💡 Inputs'!B3 = \"monthly\"\n")
    values.append(metric.measure(tmp_path / "gone.xlsx", tmp_path, request).value)
    assert values == pytest.approx([2 * 5 * 12, 3 * 5 * 12, 4.5 * 5 * 12, 8 * 5 * 12])
    assert len(built) == 1


def test_without_a_view_the_inputs_are_read_from_the_materialized_workbook(tmp_path):
    surface, metric = prepared(tmp_path, "Model!B1")
    view = surface.view_from({"'💡 Inputs'!B1": 3, "'💡 Inputs'!B2": 6}, surface.read())
    (tmp_path / "work").mkdir()
    artifact = surface.materialize(view, tmp_path / "work")
    assert metric.measure(artifact, tmp_path, MeasureRequest(10)).value == pytest.approx(3 * 6 * 12)


def test_a_formula_error_is_a_crash_that_names_the_cell_and_where_it_starts(tmp_path):
    surface, metric = prepared(tmp_path, "Model!B3")
    m = measure(surface, metric, tmp_path, B2=3)  # 100 / (3 - 3)
    assert m.status == "crash" and m.value is None
    assert m.reason == ("Model!B3 is #DIV/0! after recalculation (a formula error); "
                        "the error starts at Model!B2 (=100/('💡 Inputs'!B2-3))")


def test_guards_of_kind_cell_hold_or_fail_and_a_guard_error_names_its_cell(workspace, cli):
    folder = workspace / "guarded"
    book(folder / "model.xlsx", MODEL)
    views = ["'💡 Inputs'!B1 = 20\n'💡 Inputs'!B2 = 5\n'💡 Inputs'!B3 = \"monthly\"\n",   # keep: profit 950
             "'💡 Inputs'!B1 = 60\n'💡 Inputs'!B2 = 5\n'💡 Inputs'!B3 = \"monthly\"\n",   # better, but revenue breaks its max
             "'💡 Inputs'!B1 = 90\n'💡 Inputs'!B2 = 5\n'💡 Inputs'!B3 = \"monthly\"\n"]   # better, but the check divides by zero
    cells = """
        { ref = "'💡 Inputs'!B1", min = 1, max = 100 },
        { ref = "'💡 Inputs'!B2", min = 1, max = 20, integer = true },
        { ref = "'💡 Inputs'!B3", choices = ["monthly", "yearly"] },
    """
    guards = """
        [[guards]]
        kind = "cell"
        ref = "Model!B4"
        max = 1000
        label = "margin check"

        [[guards]]
        kind = "cell"
        ref = "Model!B1"
        max = 3000
        label = "revenue"
    """
    recipe(folder, workbook="model.xlsx", cells=cells, target="Model!B3", guards=guards, proposals=views)
    result = cli("run", folder)
    assert result.exit_code == 0, result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "keep", "guard_failed", "guard_failed"]
    assert exps[1]["score"] == pytest.approx(20 * 5 * 12 - 100 / (5 - 3) * 5)
    assert exps[2]["reason"] == "guard revenue = 3600, above its max 3000"
    assert exps[3]["reason"] == ("guard margin check could not be measured: "
                                 "Model!B4 is #DIV/0! after recalculation (a formula error)")


def test_a_metric_and_its_guards_share_one_compiled_model_and_one_evaluation(tmp_path):
    surface, metric = prepared(tmp_path, "Model!B3")
    guards = [CellMetric({"ref": ref}, tmp_path) for ref in ("Model!B1", "Model!B2")]
    for guard in guards:
        guard.prepare(surface)
    assert all(g.model is metric.model for g in guards)

    calls = []
    func = metric.model.func
    metric.model.func = lambda *args: calls.append(args) or func(*args)
    view = surface.view_from({"'💡 Inputs'!B1": 12.5, "'💡 Inputs'!B2": 7}, surface.read())
    request = MeasureRequest(10, view=view)
    values = [m.measure(tmp_path / "unused.xlsx", tmp_path, request).value for m in (metric, *guards)]

    assert values == pytest.approx([12.5 * 7 * 12 - 100 / 4 * 7, 12.5 * 7 * 12, 100 / 4])
    assert len(calls) == 1  # the target and both guards came from one evaluation


# -- mistakes found before the run -----------------------------------------------------------


def _refused(cli, folder: Path, sheets: dict, *, target: str, cells: str = '{ ref = "S!A1", min = 0, max = 10 },') -> str:
    book(folder / "book.xlsx", sheets)
    recipe(folder, workbook="book.xlsx", cells=cells, target=target, proposals=["S!A1 = 2\n"])
    before = sha(folder / "book.xlsx")
    result = cli("run", folder)
    assert result.exit_code != 0
    assert no_traceback(result.output), result.output
    assert sha(folder / "book.xlsx") == before
    assert not (folder.parent / ".overnight" / "overnight.db").exists() or not experiments(folder.parent / ".overnight" / "overnight.db")
    return result.output


def test_an_empty_target(workspace, cli):
    out = _refused(cli, workspace / "r", {"S": {"A1": 1, "B1": "=A1"}}, target="S!Z9")
    assert "Error: The cell metric's target S!Z9 in book.xlsx is empty" in out


def test_a_target_that_holds_text(workspace, cli):
    out = _refused(cli, workspace / "r", {"S": {"A1": 1, "B1": "total"}}, target="S!B1")
    assert 'Error: The cell metric\'s target S!B1 in book.xlsx holds the text "total", not a number or a formula.' in out


def test_a_target_whose_formula_computes_text(workspace, cli):
    out = _refused(cli, workspace / "r", {"S": {"A1": 1, "B1": '=IF(A1>0,"high","low")'}}, target="S!B1")
    assert 'computes to the text "high", not a number' in out


def test_a_target_that_no_editable_cell_moves(workspace, cli):
    out = _refused(cli, workspace / "r", {"S": {"A1": 1, "A2": 5, "B1": "=A2*2"}}, target="S!B1")
    assert "S!B1 in book.xlsx does not depend on any editable cell (S!A1)" in out


def test_a_target_on_a_sheet_that_does_not_exist(workspace, cli):
    out = _refused(cli, workspace / "r", {"S": {"A1": 1, "B1": "=A1"}}, target="Summary!B1")
    assert "names a sheet that book.xlsx does not have (its sheets: 'S')" in out


def test_an_unsupported_function_the_target_depends_on_names_the_function_and_the_cell(workspace, cli):
    sheets = {"S": {"A1": 1, "B1": "=A1*2", "B2": "=_xlfn.FAKEFUNC(B1)", "B3": "=B2+1"}}
    out = _refused(cli, workspace / "r", sheets, target="S!B3")
    assert ("Error: The formula engine (formulas) does not support the function FAKEFUNC, used in S!B2 "
            "(=_xlfn.FAKEFUNC(B1)), which S!B3 depends on") in out


def test_an_unsupported_function_elsewhere_in_the_workbook_does_not_matter(workspace, cli):
    folder = workspace / "r"
    book(folder / "book.xlsx", {"S": {"A1": 1, "B1": "=A1*2", "C1": "=_xlfn.FAKEFUNC(A1)"}})
    recipe(folder, workbook="book.xlsx", cells='{ ref = "S!A1", min = 0, max = 10 },', target="S!B1",
           proposals=["S!A1 = 4\n"])
    result = cli("run", folder)
    assert result.exit_code == 0, result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [(e["status"], e["score"]) for e in exps] == [("baseline", 2.0), ("keep", 8.0)]


def test_a_cell_that_refers_to_itself_is_named_as_the_cause(workspace, cli):
    sheets = {"S": {"A1": 1, "B1": "=IF(ROW(B1)>0,A1*2,0)", "B2": "=B1+1"}}
    out = _refused(cli, workspace / "r", sheets, target="S!B2")
    assert ("cannot compute S!B2 in book.xlsx: it depends on S!B1, whose formula (=IF(ROW(B1)>0,A1*2,0)) "
            "refers to its own cell") in out


def test_a_cell_metric_needs_a_workbook_surface(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    from overnight.plugins.text import TextSurface

    metric = CellMetric({"ref": "S!B1"}, tmp_path)
    with pytest.raises(OvernightError, match="the surface's file notes.txt is not an .xlsx workbook"):
        metric.prepare(TextSurface({"path": "notes.txt", "region_start": None, "region_end": None}, tmp_path))


def test_a_ref_that_is_not_a_cell_address(tmp_path):
    with pytest.raises(OvernightError, match=r"\[metric\] ref = 'B12' is not a cell address"):
        CellMetric({"ref": "B12"}, tmp_path)


def _uncomputable(folder: Path, *, guard: bool) -> Path:
    """A recipe whose target (or whose guard) depends on a cell the engine takes for a circle."""
    sheets = {"S": {"A1": 1, "B1": "=IF(ROW(B1)>0,A1*2,0)", "B2": "=B1+1", "C1": "=A1*3"}}
    book(folder / "book.xlsx", sheets)
    guards = '[[guards]]\nkind = "cell"\nref = "S!B2"\nmax = 100\nlabel = "stuck"' if guard else ""
    return recipe(folder, workbook="book.xlsx", cells='{ ref = "S!A1", min = 0, max = 10 },',
                  target="S!C1" if guard else "S!B2", guards=guards, proposals=["S!A1 = 2\n"])


@pytest.mark.parametrize("guard", [False, True], ids=["target", "guard"])
def test_check_calls_a_workbook_whose_cell_cannot_be_computed_broken(workspace, cli, guard):
    folder = _uncomputable(workspace / "r", guard=guard)
    before = sha(folder / "book.xlsx")

    result = cli("check", folder, "--yes")

    assert result.exit_code == 2, result.output  # broken, not risky
    assert "cannot compute S!B2 in book.xlsx: it depends on S!B1" in result.output
    assert no_traceback(result.output)
    assert sha(folder / "book.xlsx") == before


@pytest.mark.parametrize("guard", [False, True], ids=["target", "guard"])
def test_validate_compiles_the_target_and_guard_cells_as_run_would(workspace, cli, guard):
    folder = _uncomputable(workspace / "r", guard=guard)

    validated = cli("recipes", "validate", folder)
    run = cli("run", folder)

    assert validated.exit_code == 2 and "1 problem in" in validated.output
    section = "[guards #1]" if guard else "[metric]"
    assert f"recipe.toml:{16 if guard else 11}: {section}: The formula engine (formulas) cannot compute S!B2" in validated.output
    assert run.exit_code == 2
    assert "cannot compute S!B2 in book.xlsx: it depends on S!B1" in run.output


def test_validate_passes_a_workbook_whose_cells_compute(workspace, cli):
    folder = workspace / "ok"
    book(folder / "book.xlsx", {"S": {"A1": 1, "B1": "=A1*2", "B2": "=B1+1"}})
    recipe(folder, workbook="book.xlsx", cells='{ ref = "S!A1", min = 0, max = 10 },', target="S!B1",
           guards='[[guards]]\nkind = "cell"\nref = "S!B2"\nmax = 100', proposals=[])
    result = cli("recipes", "validate", folder)
    assert result.exit_code == 0, result.output
    assert "is a valid recipe 'ok' (surface spreadsheet, metric cell, agent scripted)" in result.output
