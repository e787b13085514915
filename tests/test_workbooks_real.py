"""Real workbooks written by others (tests/data/workbooks, see its README): a short search
run improves or holds the output, `overnight apply` writes the best inputs, the workbook
still opens in openpyxl with every formula intact, and a second run computes the new
inputs to the score the first run reported. Where the engine cannot compute a cell, the
error says which cell and function."""

from __future__ import annotations

import re
import zipfile

import pytest

from tests.data.core.kit import experiments, no_traceback, rows
from tests.data.workbooks.kit import HERE, cached, cell, formulas_of, real, recipe, sha

SEARCH = 'kind = "search"\nseed = 3'

CASES = {
    # Choose the down payment and the loan period for the least total interest, with a
    # monthly payment of at most 3,000 (the use the data notes suggest).
    "mortgage_calculator.xlsx": dict(
        cells="""
            { ref = "'📋 Overview'!C6", min = 0, max = 350000, step = 5000 },
            { ref = "'📋 Overview'!C9", min = 5, max = 30, integer = true },
        """,
        target="'📋 Overview'!C14", goal="minimize",
        guards='[[guards]]\nkind = "cell"\nref = "\'📋 Overview\'!C11"\nmax = 3000\nlabel = "monthly payment"',
        inputs=[("📋 Overview", "C6"), ("📋 Overview", "C9")],
    ),
    # The largest subtotal from the first line's quantity and price, VAT under a cap.
    "invoice.xlsx": dict(
        cells="""
            { ref = "Invoice!F15", min = 1, max = 300, integer = true },
            { ref = "Invoice!G15", min = 50, max = 200, step = 5 },
        """,
        target="Invoice!H26", goal="maximize",
        guards='[[guards]]\nkind = "cell"\nref = "Invoice!H27"\nmax = 9000\nlabel = "VAT"',
        inputs=[("Invoice", "F15"), ("Invoice", "G15")],
    ),
    # The smallest payment (PMT is negative, so the largest value) over rate and periods.
    "PMT.xlsx": dict(
        cells="""
            { ref = "Sheet1!A2", min = 0.01, max = 0.2, step = 0.005 },
            { ref = "Sheet1!A3", min = 1, max = 40, integer = true },
        """,
        target="Sheet1!A1", goal="maximize", guards="", inputs=[("Sheet1", "A2"), ("Sheet1", "A3")],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_short_search_improves_or_holds_and_apply_keeps_every_formula(workspace, cli, name):
    case = CASES[name]
    folder = workspace / "recipe"
    source = real(name, folder)
    formulas_before = formulas_of(source)
    original = sha(source)
    recipe(folder, workbook=name, cells=case["cells"], target=case["target"], goal=case["goal"],
           guards=case["guards"], agent=SEARCH, budget="experiments = 12")

    result = cli("run", folder)
    assert result.exit_code == 0, result.output
    assert sha(source) == original  # a run never writes the workbook
    db = workspace / ".overnight" / "overnight.db"
    run = rows(db, "select * from runs order by id desc limit 1")[0]
    better = 1 if case["goal"] == "maximize" else -1
    assert (run["best_score"] - run["baseline_score"]) * better >= 0
    assert sum(e["status"] == "keep" for e in experiments(db)) >= 1  # twelve tries find something better here

    best = rows(db, "select seq from experiments where id = ?", [run["best_experiment"]])[0]["seq"]
    applied = cli("apply", f"{run['id']}:{best}")
    assert applied.exit_code == 0, applied.output

    # Every formula is still there, word for word; only the declared inputs changed.
    assert formulas_of(source) == formulas_before
    view = rows(db, "select view from candidates where digest = (select candidate from experiments where id = ?)",
                [run["best_experiment"]])[0]["view"]
    written = [cell(source, sheet, ref) for sheet, ref in case["inputs"]]
    shown = [float(v) for v in re.findall(r"= (\S+)", view)]
    assert written == pytest.approx(shown)

    # A reader without a formula engine sees the new figures: the target holds its computed value.
    target_sheet, _, target_cell = case["target"].rpartition("!")
    assert cached(source, target_sheet.strip("'"), target_cell) == pytest.approx(run["best_score"], rel=1e-9)
    if name == "mortgage_calculator.xlsx":
        # The schedule the engine cannot compute depends on the loan period: its old values no
        # longer hold, so it is left for the spreadsheet program to recalculate on opening.
        assert cached(source, "📊 Amortization", "G20") is None

    # The applied workbook is read again by the engine: its baseline is the best score just applied.
    again = cli("run", folder, "--dry-run")
    assert again.exit_code == 0, again.output
    baseline = float(re.search(r"Baseline (\S+)", again.output)[1])
    assert baseline == pytest.approx(run["best_score"], rel=1e-6)


def test_an_applied_invoice_holds_every_formula_and_its_computed_value(workspace, cli):
    # A person with pandas, openpyxl data_only=True or a file preview reads the applied file:
    # every formula cell holds the value the engine computed for the new inputs.
    folder = workspace / "invoice"
    source = real("invoice.xlsx", folder)
    formulas_before = formulas_of(source)
    recipe(folder, workbook="invoice.xlsx", target="Invoice!H26",
           cells='{ ref = "Invoice!F15", min = 1, max = 300, integer = true },\n{ ref = "Invoice!G15", min = 50, max = 200, step = 5 },',
           proposals=["Invoice!F15 = 200\nInvoice!G15 = 120\n"])
    assert cli("run", folder).exit_code == 0
    applied = cli("apply", "1:1")
    assert applied.exit_code == 0, applied.output

    from openpyxl import load_workbook

    assert formulas_of(source) == formulas_before
    values = load_workbook(source, data_only=True)
    line, subtotal, vat = 200 * 120, 200 * 120 + (22640 - 160 * 100), None
    vat = round(subtotal * 0.19, 2)
    assert values["Invoice"]["H15"].value == line
    assert values["Invoice"]["H26"].value == pytest.approx(subtotal)
    assert values["Invoice"]["H27"].value == pytest.approx(vat)
    # Every other formula holds a value too (those that compute to "" read back as nothing,
    # as in the original file).
    original = load_workbook(HERE / "invoice.xlsx", data_only=True)
    for (sheet, ref), formula in formulas_before.items():
        if original[sheet][ref].value is not None:
            assert values[sheet][ref].value is not None, (sheet, ref, formula)
    assert 'fullCalcOnLoad="1"' in zipfile.ZipFile(source).read("xl/workbook.xml").decode()


def _refused(cli, folder, name: str, *, cells: str, target: str) -> str:
    source = real(name, folder)
    recipe(folder, workbook=name, cells=cells, target=target, agent=SEARCH)
    before = sha(source)
    result = cli("run", folder)
    assert result.exit_code != 0
    assert no_traceback(result.output)
    assert sha(source) == before
    return result.output


def test_the_amortization_schedule_is_a_known_gap_named_clearly(workspace, cli):
    # B9 = IF(ROW(B9)<..., EDATE(B8,1), " "): the engine takes ROW(B9) inside B9 for a circle.
    out = _refused(cli, workspace / "r", "mortgage_calculator.xlsx",
                   cells='{ ref = "\'📋 Overview\'!C6", min = 0, max = 350000 },', target="'📊 Amortization'!G20")
    assert ("Error: The formula engine (formulas) cannot compute '📊 Amortization'!G20 in mortgage_calculator.xlsx: "
            "it depends on '📊 Amortization'!B9, whose formula (=IF(ROW(B9)<LoanPeriod*12+ROW($B$9)-1,EDATE(B8,1),\" \")) "
            "refers to its own cell") in out


def test_the_invoice_line_numbers_use_a_function_the_engine_lacks(workspace, cli):
    out = _refused(cli, workspace / "r", "invoice.xlsx",
                   cells='{ ref = "Invoice!F15", min = 1, max = 300, integer = true },', target="Invoice!B15")
    assert ("Error: The formula engine (formulas) does not support the function SEQUENCE, used in Invoice!B15 "
            "(=_xlfn.SEQUENCE(COUNTA(C15:C25)))") in out
