"""`overnight demo`: the bundled pricing recipe runs offline in a fresh folder, shows a gain
with its guard holding, and the usual commands work on it from the same folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from overnight.core.contracts import MeasureRequest
from overnight.recipes import folder as bundled_folder
from tests.data.core.kit import experiments, no_traceback, rows
from tests.data.workbooks.kit import cell, formulas_of, sha


def _bundled_files() -> dict[str, str]:
    root = bundled_folder("pricing")
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_the_demo_shows_a_gain_with_the_guard_holding_and_apply_writes_its_workbook(workspace, cli):
    bundled = _bundled_files()
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert no_traceback(result.output)
    out = result.output
    assert "Copied the bundled 'pricing' recipe to overnight-demo/" in out
    assert "Goal: the highest monthly profit (Model!B12) in overnight-demo/pricing.xlsx, " \
           "while cash at month 12 (Model!B14) stays >= 0." in out
    for command in ("overnight log", "overnight diff 1:", "overnight apply 1:", "overnight tui"):
        assert command in out
    assert _bundled_files() == bundled  # the bundled recipe is never written

    demo = workspace / "overnight-demo"
    workbook = demo / "pricing.xlsx"
    db = workspace / ".overnight" / "overnight.db"  # the store of the folder the demo ran from
    run = rows(db, "select * from runs")[0]
    assert run["recipe"] == "pricing" and run["status"] == "finished"
    assert run["best_score"] > run["baseline_score"] * 1.2  # the baseline is far from the best mix
    best = rows(db, "select * from experiments where id = ?", [run["best_experiment"]])[0]
    assert best["status"] == "keep"
    assert any(e["status"] == "guard_failed" for e in experiments(db))  # the guard did refuse something

    assert cli("log").exit_code == 0
    diff = cli("diff", f"1:{best['seq']}")
    assert diff.exit_code == 0 and "Price per unit" in diff.output and "Inputs!B2  15 -> " in diff.output

    formulas_before = formulas_of(workbook)
    applied = cli("apply", f"1:{best['seq']}")
    assert applied.exit_code == 0, applied.output
    assert formulas_of(workbook) == formulas_before
    view = rows(db, "select view from candidates where digest = ?", [best["candidate"]])[0]["view"]
    values = [float(v) for v in re.findall(r"= (\S+)", view)]
    assert [cell(workbook, "Inputs", ref) for ref in ("B2", "B3", "B4")] == pytest.approx(values)

    # Recalculated from the applied workbook by the engine: the score reported, and cash that lasts.
    from overnight.core.recipe import load

    recipe = load(demo)
    surface = recipe.surface.build(recipe.dir)
    profit, cash = (part.build(recipe.dir) for part in (recipe.metrics[0], recipe.guards[0]))
    for metric in (profit, cash):
        metric.prepare(surface)
    request = MeasureRequest(10, view=surface.read())
    assert profit.measure(workbook, demo, request).value == pytest.approx(best["score"])
    assert cash.measure(workbook, demo, request).value >= 0


def test_each_demo_gets_a_folder_of_its_own(workspace):
    from overnight.cli.demo import _fresh

    assert _fresh(None) == workspace / "overnight-demo"
    (workspace / "overnight-demo").mkdir()
    (workspace / "overnight-demo-2").mkdir()
    assert _fresh(None) == workspace / "overnight-demo-3"
    (workspace / "empty").mkdir()
    assert _fresh(Path("empty")) == Path("empty")


def test_a_dir_that_holds_something_is_refused_and_left_alone(workspace, cli):
    mine = workspace / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    result = cli("demo", "--dir", "mine")
    assert result.exit_code != 0
    assert "Error: The folder mine is not empty; give --dir a new or empty folder (nothing was written)." in result.output
    assert no_traceback(result.output)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "mine\n"
    assert not (workspace / ".overnight").exists()


def test_the_bundled_recipes_are_listed_by_folder():
    from overnight import recipes

    assert bundled_folder("pricing") in recipes.folders()
    assert (bundled_folder("pricing") / "recipe.toml").is_file()
    assert bundled_folder("no-such-recipe") is None


def test_demo_dir_keeps_its_store_where_the_closing_lines_say_and_git_ignores_it(workspace, cli):
    result = cli("demo", "--dir", "elsewhere", "--quiet")
    assert result.exit_code == 0, result.output

    home = workspace / "elsewhere"
    assert "The run is stored in elsewhere/.overnight/overnight.db; `cd elsewhere` first, then try:" in result.output
    assert rows(home / ".overnight" / "overnight.db", "select status from runs")[0]["status"] == "finished"
    assert not (workspace / ".overnight").exists()  # nothing where the demo was started
    assert "write them into pricing.xlsx" in result.output  # said from the folder the person will cd into
    for folder in (home, home / ".overnight"):
        assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
