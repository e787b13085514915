"""The `spreadsheet` surface: the view of declared cells, its checks, copies that keep
everything else of the workbook, apply with a backup, and one clear sentence for each
workbook or declaration it cannot use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from overnight.core.errors import OvernightError
from overnight.plugins.spreadsheet import SpreadsheetSurface
from tests.data.core.kit import experiments, no_traceback
from tests.data.workbooks.kit import book, cached, cell, formulas_of, real, recipe, sha

SHEETS = {
    "Inputs": {"A1": "Pricing inputs", "A2": "Price per unit", "B2": 19.5, "A3": "Plan", "B3": "monthly",
               "A4": "Seats", "B4": 3, "C1": "Growth", "C2": 0.05},
    "📋 Overview": {"B4": "Home price", "C4": 250000, "C5": "=C4*2"},
    "Model": {"A1": "Revenue", "B1": "=Inputs!B2*Inputs!B4*IF(Inputs!B3=\"yearly\",11,12)",
              "A2": "Doubled", "B2": "='📋 Overview'!C5"},
}
CELLS = [
    {"ref": "Inputs!B2", "min": 5, "max": 60, "step": 0.5},
    {"ref": "Inputs!B3", "choices": ["monthly", "yearly"]},
    {"ref": "inputs!$B$4", "min": 1, "max": 50, "integer": True},
    {"ref": "Inputs!C2", "min": 0.001, "max": 1, "log": True},
    {"ref": "'📋 Overview'!C4", "min": 100000, "max": 900000, "step": 1000, "label": "Price of the home"},
]
VIEW = """\
Inputs!B2 = 19.5    # Price per unit
Inputs!B3 = "monthly"    # Plan
Inputs!B4 = 3    # Seats
Inputs!C2 = 0.05    # Growth
'📋 Overview'!C4 = 250000    # Price of the home
"""


@pytest.fixture
def surface(tmp_path) -> SpreadsheetSurface:
    book(tmp_path / "book.xlsx", SHEETS)
    return SpreadsheetSurface({"path": "book.xlsx", "cells": [dict(c) for c in CELLS]}, tmp_path)


# -- the view ---------------------------------------------------------------------------


def test_the_view_lists_each_declared_cell_with_the_label_beside_it(surface):
    # Left of B2 is text; B4's left is "Seats"; C2 has a number to its left, so the text above
    # is its label; the overview cell has a label from the recipe; sheet names are spelled as
    # the workbook spells them, quoted like Excel when they hold spaces or emoji.
    assert surface.read() == VIEW


def test_a_view_reads_back_to_the_same_values_and_renders_the_same_text(surface):
    values = surface.values_of(VIEW)
    assert values == {"Inputs!B2": 19.5, "Inputs!B3": "monthly", "Inputs!B4": 3, "Inputs!C2": 0.05,
                      "'📋 Overview'!C4": 250000}
    assert surface.view_from(values, VIEW) == VIEW
    changed = surface.view_from({"Inputs!B2": 23.700000000000003, "Inputs!B3": "yearly", "Inputs!B4": 7.0,
                                 "'📋 Overview'!C4": 412345.6}, VIEW)
    # Values from a sampler are snapped to the declared steps and kinds.
    assert surface.values_of(changed) == {"Inputs!B2": 23.5, "Inputs!B3": "yearly", "Inputs!B4": 7,
                                          "Inputs!C2": 0.05, "'📋 Overview'!C4": 412000}
    assert surface.view_from(surface.values_of(changed), VIEW) == changed
    assert surface.problems(changed, VIEW) == []


def test_text_with_quotes_and_hashes_survives_the_view(tmp_path):
    book(tmp_path / "b.xlsx", {"S": {"A1": 'say "hi" # not a comment', "B1": "=LEN(A1)"}})
    s = SpreadsheetSurface({"path": "b.xlsx", "cells": [{"ref": "S!A1", "choices": ['say "hi" # not a comment', "x"]}]}, tmp_path)
    view = s.read()
    assert view == 'S!A1 = "say \\"hi\\" # not a comment"\n'
    assert s.values_of(view) == {"S!A1": 'say "hi" # not a comment'}
    assert s.problems(view, view) == []


def test_the_cells_are_typed_parameters_for_the_search_agent(surface):
    params = {p.name: p for p in surface.parameters()}
    assert list(params) == ["Inputs!B2", "Inputs!B3", "Inputs!B4", "Inputs!C2", "'📋 Overview'!C4"]
    assert (params["Inputs!B2"].min, params["Inputs!B2"].max, params["Inputs!B2"].step) == (5, 60, 0.5)
    assert params["Inputs!B3"].choices == ("monthly", "yearly")
    assert params["Inputs!B4"].integer and params["Inputs!B4"].min == 1
    assert params["Inputs!C2"].log


@pytest.mark.parametrize("line, problem", [
    ("Inputs!B2 = 70", "Inputs!B2 = 70 is above its max 60"),
    ("Inputs!B2 = 4.5", "Inputs!B2 = 4.5 is below its min 5"),
    ("Inputs!B2 = 19.3", "Inputs!B2 = 19.3 is not on its steps of 0.5 from 5"),
    ('Inputs!B2 = "cheap"', 'Inputs!B2 = "cheap" is not a number'),
    ("Inputs!B2 = cheap", "line 1: Inputs!B2: cheap is not a number"),
    ("Inputs!B4 = 2.5", "Inputs!B4 = 2.5 is not a whole number"),
    ('Inputs!B3 = "weekly"', 'Inputs!B3 = "weekly" is not one of its choices ("monthly", "yearly")'),
])
def test_the_check_rejects_values_a_cell_does_not_accept(surface, line, problem):
    lines = VIEW.splitlines()
    ref = line.split(" =")[0]
    view = "\n".join([line] + [x for x in lines if not x.startswith(ref)]) + "\n"
    problems = surface.problems(view, VIEW)
    assert any(p.startswith(problem) for p in problems), problems


def test_the_check_rejects_an_undeclared_cell_a_missing_line_and_a_line_it_cannot_read(surface):
    assert surface.problems(VIEW + "Model!B1 = 5\n", VIEW) == [
        "Model!B1 is not an editable cell (the editable cells are Inputs!B2, Inputs!B3, Inputs!B4, Inputs!C2, '📋 Overview'!C4)"]
    assert surface.problems(VIEW.replace("Inputs!B4 = 3    # Seats\n", ""), VIEW) == ["the line for Inputs!B4 is missing"]
    assert surface.problems(VIEW + "Inputs!B2 = 20\n", VIEW) == ["Inputs!B2 is set twice (lines 1 and 6)"]
    assert surface.problems("total nonsense\n" + VIEW, VIEW) == ["line 1 is not `Sheet!A1 = value`: total nonsense"]


def test_the_diff_shows_label_address_and_old_to_new_for_each_changed_cell(surface):
    new = surface.view_from({"Inputs!B2": 25, "Inputs!B3": "yearly"}, VIEW)
    assert surface.diff(VIEW, new) == (
        "Price per unit  Inputs!B2  19.5 -> 25\n"
        'Plan            Inputs!B3  "monthly" -> "yearly"\n'
    )
    assert surface.diff(VIEW, VIEW) == ""


def test_asked_again_about_a_view_the_surface_answers_the_same_and_a_changed_workbook_is_read_again(surface, tmp_path):
    # The loop asks about each candidate several times (its problems, its diff, its rules and
    # parameters every experiment); what one caller does with an answer never changes the next.
    bad = VIEW.replace("Inputs!B4 = 3", "Inputs!B4 = 2.5") + "Model!B1 = 5\n"
    first = surface.problems(bad, VIEW)
    first.append("scribbled on by a caller")
    assert surface.problems(bad, VIEW) == first[:-1] and len(first) == 3
    params = surface.parameters()
    params.clear()
    assert [p.name for p in surface.parameters()] == ["Inputs!B2", "Inputs!B3", "Inputs!B4", "Inputs!C2", "'📋 Overview'!C4"]
    rules = surface.rules()
    assert surface.rules() == rules and "- Inputs!B2 (Price per unit): a number from 5 to 60 in steps of 0.5." in rules
    new = surface.view_from({"Inputs!B2": 25}, VIEW)
    assert surface.diff(VIEW, new) == surface.diff(VIEW, new) == "Price per unit  Inputs!B2  19.5 -> 25\n"
    # The person edits the workbook (a new label, a new starting value): the next read sees it.
    sheets = {name: dict(cells) for name, cells in SHEETS.items()}
    sheets["Inputs"].update({"A2": "Unit price", "B2": 21})
    book(tmp_path / "book.xlsx", sheets)
    os.utime(tmp_path / "book.xlsx", ns=(1_000_000_000, 1_000_000_000))  # a stamp the first read never saw
    assert surface.read().splitlines()[0] == "Inputs!B2 = 21    # Unit price"
    assert "- Inputs!B2 (Unit price): a number from 5 to 60" in surface.rules()
    assert surface.diff(VIEW, new) == "Unit price  Inputs!B2  19.5 -> 25\n"


# -- copies and apply ----------------------------------------------------------------------


def test_a_copy_holds_the_new_values_and_keeps_formulas_sheets_styles_and_the_rest(tmp_path):
    source = book(tmp_path / "book.xlsx", {"Data": {"A1": "Price", "B1": 10, "A2": "Units", "B2": 3, "B3": "=B1*B2"},
                                           "Notes": {"A1": "kept as is", "B1": "=Data!B3+1"}},
                  formats={"Data!B1": '#,##0.00 "€"'}, comments={"Data!B1": "the list price"}, chart=True)
    before = sha(source)
    s = SpreadsheetSurface({"path": "book.xlsx", "cells": [{"ref": "Data!B1", "min": 0, "max": 100}]}, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    copy = s.materialize(s.view_from({"Data!B1": 12.25}, s.read()), work)

    assert sha(source) == before  # the user's file is never written by a run
    assert cell(copy, "Data", "B1") == 12.25
    assert formulas_of(copy) == formulas_of(source) == {("Data", "B3"): "=B1*B2", ("Notes", "B1"): "=Data!B3+1"}
    from openpyxl import load_workbook

    wb = load_workbook(copy)
    assert wb.sheetnames == ["Data", "Notes"]
    assert wb["Data"]["B1"].number_format == '#,##0.00 "€"'
    assert wb["Data"]["B1"].font.bold and wb["Data"]["B1"].comment.text == "the list price"
    # Parts openpyxl would drop on a save (the chart) are carried over byte for byte.
    with zipfile.ZipFile(source) as a, zipfile.ZipFile(copy) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        assert any(n.startswith("xl/charts/") for n in b.namelist())
        for name in a.namelist():
            if not name.startswith("xl/worksheets/") and name != "xl/workbook.xml":
                assert a.read(name) == b.read(name), name
        # The spreadsheet program recalculates on opening all the same.
        assert 'fullCalcOnLoad="1"' in b.read("xl/workbook.xml").decode()
    # A reader without a formula engine (pandas, data_only=True, a preview) sees the new figures.
    assert cached(copy, "Data", "B3") == 12.25 * 3
    assert cached(copy, "Notes", "B1") == 12.25 * 3 + 1


def test_a_copy_holds_computed_text_true_false_and_errors_and_drops_what_cannot_be_computed(tmp_path):
    sheets = {"S": {"A1": 2, "B1": '=IF(A1>1,"high","low")', "B2": "=A1>1", "B3": "=1/(A1-3)",
                    "B4": "=IF(ROW(B4)>0,A1,0)", "B5": "=7*6", "C1": 5, "C2": "=C1+1"}}
    book(tmp_path / "book.xlsx", sheets)
    s = SpreadsheetSurface({"path": "book.xlsx", "cells": [{"ref": "S!A1", "min": 0, "max": 10}]}, tmp_path)
    (tmp_path / "work").mkdir()
    copy = s.materialize(s.view_from({"S!A1": 3}, s.read()), tmp_path / "work")

    assert cached(copy, "S", "B1") == "high"
    assert cached(copy, "S", "B2") is True
    assert cached(copy, "S", "B3") == "#DIV/0!"
    assert cached(copy, "S", "B4") is None  # fed by A1, and the engine takes ROW(B4) in B4 for a circle
    assert cached(copy, "S", "B5") == 42 and cached(copy, "S", "C2") == 6  # fed by no editable cell
    assert formulas_of(copy) == formulas_of(tmp_path / "book.xlsx")


def test_a_text_choice_is_written_as_text_that_openpyxl_reads_back(surface, tmp_path):
    (tmp_path / "work").mkdir()
    copy = surface.materialize(surface.view_from({"Inputs!B3": "yearly"}, VIEW), tmp_path / "work")
    assert cell(copy, "Inputs", "B3") == "yearly"
    assert cell(copy, "Model", "B1") == '=Inputs!B2*Inputs!B4*IF(Inputs!B3="yearly",11,12)'


PROPOSALS = [
    "Inputs!B2 = 30\n",                          # 1 keep: revenue up
    "Inputs!B2 = 99\n",                          # 2 invalid: above its max
    "Inputs!B2 = 30\nModel!B1 = 1\n",            # 3 invalid: not an editable cell
    "Inputs!B2 = 12\n",                          # 4 discard
]


def _sales(folder: Path) -> Path:
    book(folder / "sales.xlsx", {"Inputs": {"A1": "Price", "B1": 10, "B2": "=B1*(100-B1)"}})
    return recipe(folder, workbook="sales.xlsx", cells='{ ref = "Inputs!B1", min = 1, max = 60 },',
                  target="Inputs!B2", proposals=[p.replace("B2", "B1") for p in PROPOSALS])


def test_a_run_checks_each_proposal_and_apply_writes_the_workbook_with_a_backup(workspace, cli):
    folder = _sales(workspace / "sales")
    source = folder / "sales.xlsx"
    before = source.read_bytes()
    result = cli("run", folder)
    assert result.exit_code == 0, result.output
    db = workspace / ".overnight" / "overnight.db"
    exps = experiments(db)
    assert [e["status"] for e in exps] == ["baseline", "keep", "invalid", "invalid", "discard"]
    assert "Inputs!B1 = 99 is above its max 60" in exps[2]["reason"]
    assert "Model!B1 is not an editable cell" in exps[3]["reason"]
    assert source.read_bytes() == before

    shown = cli("diff", "1:1")
    assert "Price  Inputs!B1  10 -> 30" in shown.output
    applied = cli("apply", "1:1")
    assert applied.exit_code == 0, applied.output
    assert cell(source, "Inputs", "B1") == 30
    assert formulas_of(source) == {("Inputs", "B2"): "=B1*(100-B1)"}
    backups = list((workspace / ".overnight" / "backups").iterdir())
    assert len(backups) == 1 and backups[0].read_bytes() == before


def test_apply_refuses_when_the_workbook_changed_since_the_run_began(workspace, cli):
    folder = _sales(workspace / "sales")
    assert cli("run", folder).exit_code == 0
    source = folder / "sales.xlsx"
    book(source, {"Inputs": {"A1": "Price", "B1": 11, "B2": "=B1*(100-B1)"}})  # the person edits it
    edited = source.read_bytes()
    result = cli("apply", "1:1")
    assert result.exit_code != 0
    assert "changed since run 1 began" in result.output and no_traceback(result.output)
    assert source.read_bytes() == edited


# -- workbooks and declarations it cannot use -----------------------------------------------


def _bad_run(cli, folder: Path, *, cells: str = '{ ref = "S!A1", min = 0, max = 10 },', target: str = "S!B1"):
    recipe(folder, workbook="book.xlsx", cells=cells, target=target, proposals=["S!A1 = 2\n"])
    files = {p: sha(p) for p in folder.iterdir() if p.is_file()}
    result = cli("run", folder)
    assert result.exit_code != 0
    assert no_traceback(result.output), result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert error, result.output
    assert {p: sha(p) for p in folder.iterdir() if p.is_file()} == files  # nothing of the user's was written
    return result.output


def test_a_missing_workbook(workspace, cli):
    out = _bad_run(cli, workspace / "r")
    assert "The workbook" in out and "book.xlsx does not exist" in out


def test_a_csv_renamed_to_xlsx(workspace, cli):
    (workspace / "r").mkdir()
    (workspace / "r" / "book.xlsx").write_text("price,units\n10,3\n")
    out = _bad_run(cli, workspace / "r")
    assert "is not an .xlsx workbook: it is not a zip archive" in out


def test_a_zip_that_is_not_a_workbook(workspace, cli):
    (workspace / "r").mkdir()
    with zipfile.ZipFile(workspace / "r" / "book.xlsx", "w") as z:
        z.writestr("notes.txt", "hello")
    out = _bad_run(cli, workspace / "r")
    assert "is a zip archive but not an .xlsx workbook" in out


def test_random_bytes(workspace, cli):
    (workspace / "r").mkdir()
    (workspace / "r" / "book.xlsx").write_bytes(os.urandom(4096))
    out = _bad_run(cli, workspace / "r")
    assert "book.xlsx is not an .xlsx workbook" in out


def test_a_password_protected_workbook(workspace, cli):
    real("password-protected.xlsx", workspace / "r").rename(workspace / "r" / "book.xlsx")
    out = _bad_run(cli, workspace / "r")
    assert "is password-protected (encrypted)" in out and "save an unprotected .xlsx copy" in out


def test_a_truncated_workbook(workspace, cli):
    whole = book(workspace / "r" / "book.xlsx", {"S": {"A1": 1, "B1": "=A1*2"}})
    whole.write_bytes(whole.read_bytes()[:-200])
    out = _bad_run(cli, workspace / "r")
    assert "book.xlsx is" in out and ("damaged" in out or "not a zip archive" in out)


@pytest.mark.parametrize("cells, sheets, expected", [
    ('{ ref = "Nope!A1", min = 0, max = 10 },', {"S": {"A1": 1, "B1": "=A1"}},
     "cells #1 (Nope!A1): there is no sheet 'Nope' in book.xlsx (its sheets: 'S')"),
    ('{ ref = "S!C9", min = 0, max = 10 },', {"S": {"A1": 1, "B1": "=A1"}},
     "cells #1 (S!C9): S!C9 is empty; an editable cell must hold its starting value"),
    ('{ ref = "S!B1", min = 0, max = 10 },', {"S": {"A1": 1, "B1": "=A1*2"}},
     "cells #1 (S!B1): S!B1 holds a formula (=A1*2); only cells with a typed value can change"),
    ('{ ref = "S!A1", min = 10, max = 0 },', {"S": {"A1": 1, "B1": "=A1"}},
     "cells #1 (S!A1): 'min' (10) is larger than 'max' (0)"),
    ('{ ref = "S!A1" },', {"S": {"A1": 1, "B1": "=A1"}},
     "cells #1 (S!A1): declare 'min' and 'max' (the range the value may take), or 'choices'"),
    ('{ ref = "S!A1", min = 0, max = 10, stepp = 1 },', {"S": {"A1": 1, "B1": "=A1"}},
     "cells #1 (S!A1): unknown key 'stepp' (did you mean 'step'?)"),
    ('{ ref = "S1", min = 0, max = 10 },', {"S": {"A1": 1, "B1": "=A1"}},
     "cells #1 (S1): 'ref' = 'S1' is not a cell address"),
    ('{ ref = "S!A1", min = 0, max = 10 },\n{ ref = "s!$A$1", min = 0, max = 5 },', {"S": {"A1": 1, "B1": "=A1"}},
     "cells #2 (s!$A$1): s!A1 is declared twice (also cells #1)"),
    ('{ ref = "S!A2", min = 0, max = 10 },', {"S": {"A1": 1, "A2": "text", "B1": "=A1"}},
     'S!A2 holds "text", not a number, but is declared with min and max'),
])
def test_a_declared_cell_it_cannot_use(workspace, cli, cells, sheets, expected):
    book(workspace / "r" / "book.xlsx", sheets)
    out = _bad_run(cli, workspace / "r", cells=cells)
    assert expected in out
    assert "recipe.toml:" in out  # the sentence says where


def test_loading_the_plugins_imports_neither_openpyxl_nor_formulas():
    code = ("import sys; import overnight.plugins.spreadsheet, overnight.plugins.cell, overnight.plugins.workbook; "
            "print(json.dumps([m for m in ('openpyxl', 'formulas', 'numpy') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_view_of_another_workbook_is_an_error_not_a_crash(surface):
    with pytest.raises(OvernightError, match="is not a view of book.xlsx"):
        surface.values_of("hello world\n")
