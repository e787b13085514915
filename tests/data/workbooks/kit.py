"""Helpers for the spreadsheet tests: small workbooks written with openpyxl, recipe folders
around them, and a look inside a saved workbook."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def real(name: str, folder: Path) -> Path:
    """A copy of one of the real workbooks kept here, so nothing writes to the originals."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(HERE / name, folder / name))


def book(path: Path, sheets: dict[str, dict[str, Any]], *, formats: dict[str, str] | None = None,
         comments: dict[str, str] | None = None, chart: bool = False) -> Path:
    """A workbook from {sheet: {cell: value or "=formula"}}; formats and comments by "Sheet!A1"."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, cells in sheets.items():
        ws = wb.create_sheet(name)
        for cell, value in cells.items():
            ws[cell] = value
    for ref, fmt in (formats or {}).items():
        sheet, cell = ref.rsplit("!", 1)
        wb[sheet][cell].number_format = fmt
        wb[sheet][cell].font = Font(bold=True, color="FF0000")
    for ref, text in (comments or {}).items():
        sheet, cell = ref.rsplit("!", 1)
        wb[sheet][cell].comment = Comment(text, "tests")
    if chart:
        from openpyxl.chart import BarChart, Reference

        ws = wb.worksheets[0]
        c = BarChart()
        c.add_data(Reference(ws, min_col=2, min_row=1, max_row=3))
        ws.add_chart(c, "E2")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def recipe(folder: Path, *, workbook: str, cells: str, target: str, goal: str = "maximize", guards: str = "",
           proposals: list[str] | None = None, agent: str | None = None, budget: str = "experiments = 20",
           name: str | None = None) -> Path:
    """A recipe folder around a workbook already in `folder`. Proposals make a scripted agent."""
    folder.mkdir(parents=True, exist_ok=True)
    if agent is None:
        agent = 'kind = "scripted"\nfile = "proposals.jsonl"'
        lines = "".join(json.dumps({"view": v, "rationale": f"idea {i}"}) + "\n" for i, v in enumerate(proposals or [], 1))
        (folder / "proposals.jsonl").write_text(lines, encoding="utf-8")
    text = f"""
[recipe]
name = "{name or folder.name}"

[surface]
kind = "spreadsheet"
path = "{workbook}"
cells = [
{textwrap.indent(textwrap.dedent(cells).strip(), "  ")}
]

[metric]
kind = "cell"
ref = "{target}"
goal = "{goal}"

{textwrap.dedent(guards).strip()}

[agent]
{agent}

[budget]
{budget}
"""
    (folder / "recipe.toml").write_text(text.lstrip(), encoding="utf-8")
    return folder


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def formulas_of(path: Path) -> dict[tuple[str, str], str]:
    """Every formula of a workbook, by (sheet, cell), as openpyxl reads it."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                v = c.value
                text = getattr(v, "text", v)
                if isinstance(text, str) and text.startswith("="):
                    out[(ws.title, c.coordinate)] = text
    return out


def cell(path: Path, sheet: str, ref: str) -> Any:
    from openpyxl import load_workbook

    return load_workbook(path)[sheet][ref].value


def cached(path: Path, sheet: str, ref: str) -> Any:
    """A cell as a reader without a formula engine sees it: a formula's cached value."""
    from openpyxl import load_workbook

    return load_workbook(path, data_only=True)[sheet][ref].value
