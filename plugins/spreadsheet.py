"""Surface `spreadsheet`: the declared cells of an .xlsx workbook, and nothing else.

The recipe declares which cells may change and how (`min`/`max`/`step`, `integer`,
`log`, or `choices`); every other cell, formula, sheet and style stays as it is. The
view is one line per declared cell (see plugins/workbook.py), so a person, an LLM and
the search agent all read and write the same text.

A copy (a work folder's, or the file an apply writes) keeps every formula and holds
the value the formula engine computes for it, so pandas, openpyxl's `data_only=True`
and file previews read the new figures; a formula the engine cannot compute and that
the editable cells feed is left without a value, for the spreadsheet program to
recalculate on opening (`fullCalcOnLoad`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from overnight.core import parameters, workfolder
from overnight.core.contracts import Parameter, ParametricSurface
from overnight.core.errors import OvernightError, RecipeError
from overnight.core.files import atomic_write
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

from . import workbook as wb
from .workbook import Ref

# A cell's declaration takes these besides the keys every parameter takes (core/parameters.py).
CELL_KEYS = {
    "ref": Option(str, 'the cell\'s address such as "Inputs!B2"', required=True),
    "label": Option(str, "what the view calls it (default: the text beside the cell)", default=None),
}
EXAMPLE = '{ ref = "Inputs!B2", min = 5, max = 60 }'
# The engine compiles every formula before it computes a copy's values (a few ms each); beyond
# this many, copies hold no cached values and the spreadsheet program recalculates on opening.
MOST_FORMULAS = 5000


@dataclass(frozen=True)
class Declared:
    """One editable cell as the recipe declares it: its address, its label, what it accepts."""

    ref: Ref
    written: str  # the address as the recipe writes it, for messages
    label: str | None
    accepts: Parameter


@dataclass(frozen=True)
class Cell:
    """A declared cell as found in the workbook."""

    parameter: Parameter  # named by `ref`
    ref: Ref  # with the sheet name spelled as in the workbook
    value: Any
    label: str
    note: str  # the cell's comment in the workbook, for the rules


@dataclass
class _Known:
    """The declared cells as last read from the workbook, with what each experiment asks of
    them worked out once: their names, their parameters, the rules."""

    cells: list[Cell]
    stamp: tuple | None  # the file's (mtime, size) when they were read
    by_key: dict[tuple, Cell]
    names: dict[tuple, str]  # (case-folded sheet, cell) -> the address as the workbook spells it
    parameters: list[Parameter]
    rules: str | None = None  # made on first use


class SpreadsheetSurface(ParametricSurface):
    name = "spreadsheet"
    unit = "cells"  # what `explain` says a change rewrote
    summary = "Declared cells of an .xlsx workbook (bounds or choices each); formulas, sheets and styles are kept."
    options = {
        "path": Option(str, "the workbook, relative to the recipe", required=True),
        "cells": Option(list, 'the editable cells: [{ ref = "Inputs!B2", min = 5, max = 60, step = 0.5 }, ...]', required=True),
    }
    entry_options = {"cells": {**CELL_KEYS, **parameters.KEYS}}  # what each entry of `cells` takes (overnight plugins)

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.declared = self._declare(self.config["cells"])
        self.lock = threading.Lock()
        self.build_lock = threading.Lock()  # held while the engine loads the whole workbook, once
        self._known: _Known | None = None  # the cells, re-read when the file changes
        self._source: Path | None = None
        self._patcher: wb.Patcher | None = None
        self._recalculation: Any = None  # engine.Recalculation, or False when the engine cannot load the workbook

    # -- the contract --------------------------------------------------------------------

    def source(self) -> Path:
        if self._source is None:  # resolved once: the loop asks for it several times an experiment
            self._source = self.path(self.config["path"])
        return self._source

    def read(self) -> str:
        return wb.render([(c.ref, c.value, c.label) for c in self.cells()])

    def rules(self) -> str:
        known = self._current()
        if known.rules is None:
            lines = ["Change only the values after '=', one line per cell; keep every line and its address.",
                     "Numbers are written plainly (19.5), text in double quotes. The cells and what they accept:"]
            for c in known.cells:
                note = f" Note in the workbook: {' '.join(c.note.split())}" if c.note else ""
                lines.append(f"- {c.ref} ({c.label or 'no label'}): {parameters.describe(c.parameter)}.{note}")
            known.rules = "\n".join(lines)
        return known.rules

    def problems(self, view: str, base: str) -> list[str]:
        lines, problems = wb.parse_kept(view)
        unreadable = bool(problems)  # a line that cannot be read would also count as missing
        cells = self._current().by_key
        seen: dict[tuple, int] = {}
        for line in lines:
            cell = cells.get(line.ref.key)
            if cell is None:
                problems.append(f"{line.ref} is not an editable cell (the editable cells are {_names(cells.values())})")
                continue
            if line.ref.key in seen:
                problems.append(f"{cell.ref} is set twice (lines {seen[line.ref.key]} and {line.number})")
                continue
            seen[line.ref.key] = line.number
            problem = parameters.problem(cell.parameter, line.value)
            if problem:
                problems.append(problem)
        missing = [c for key, c in cells.items() if key not in seen]
        if missing and not unreadable:
            problems.append(f"the line for {_names(missing)} is missing")
        return problems

    def materialize(self, view: str, folder: Path) -> Path:
        values = self._values(view)
        with self.lock:
            # Built once per run from the workbook as it was when the run began.
            if self._patcher is None:
                self._patcher = self._open(wb.Patcher)
            patcher = self._patcher
        target = folder / self.source().name
        workfolder.write(target, self._write(patcher, values, compress=False))  # a link there is replaced, not written through
        return target

    def apply(self, view: str, backup_dir: Path) -> Path | None:
        data = self._write(self._open(wb.Patcher), self._values(view))
        return atomic_write(self.source(), data, backup_dir)

    def results(self, values: dict[Ref, Any]):
        """The value of each formula with these inputs, for a copy to hold; None when the
        engine cannot load the workbook at all (the copy then holds no cached values)."""
        inputs = [c.ref for c in self.cells()]
        with self.build_lock:
            if self._recalculation is None:
                from .engine import Recalculation

                try:
                    if self._open(wb.Patcher).formulas() > MOST_FORMULAS:
                        raise ValueError("too many formulas to compute in reasonable time")
                    self._recalculation = Recalculation(self.source(), inputs)
                except Exception:  # an engine that cannot read this workbook: the program recalculates on opening
                    self._recalculation = False
        if not self._recalculation:
            return None
        try:
            return self._recalculation.values(values)
        except Exception:  # nor compute these values
            return None

    def diff(self, old: str, new: str) -> str:
        """One line per changed cell: label, address, old -> new."""
        try:
            known = self._current()
            before, after = self._named(old, known), self._named(new, known)
            labels = {str(c.ref): c.label for c in known.cells}
        except OvernightError:
            return super().diff(old, new)
        rows = [(labels.get(ref, ""), ref, wb.format_value(before.get(ref)) if ref in before else "-", wb.format_value(value))
                for ref, value in after.items() if ref not in before or not wb.same_value(before[ref], value)]
        if not rows:
            return ""
        wl, wr = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
        out = []
        for label, ref, a, b in rows:
            head = f"{label:<{wl}}  " if wl else ""
            out.append(f"{head}{ref:<{wr}}  {a} -> {b}")
        return "\n".join(out) + "\n"

    def parameters(self) -> list[Parameter]:
        return list(self._current().parameters)

    def view_from(self, values: dict[str, Any], base: str) -> str:
        """The view holding these values (snapped to each cell's step), other cells as in `base`."""
        known = self._current()
        cells = known.cells
        current = self._named(base, known) if base else {}
        by_name = {str(c.ref): c for c in cells}
        unknown = [name for name in values if name not in by_name]
        if unknown:
            raise OvernightError(f"{', '.join(unknown)} is not an editable cell of {self.source().name}.")
        rows = []
        for c in cells:
            name = str(c.ref)
            value = parameters.snap(c.parameter, values[name]) if name in values else current.get(name, c.value)
            rows.append((c.ref, value, c.label))
        return wb.render(rows)

    def values_of(self, view: str) -> dict[str, Any]:
        return self._named(view, self._current())

    def _named(self, view: str, known: _Known) -> dict[str, Any]:
        lines, problems = wb.parse_kept(view)
        if problems:
            raise OvernightError(f"This is not a view of {self.source().name}: {problems[0]}.")
        names = known.names
        return {names.get(line.ref.key) or str(line.ref): line.value for line in lines}

    # degenerate(): left as the default. Any assignment inside the declared bounds is a
    # legitimate workbook, so no view should score badly by construction.

    # -- reading the workbook ---------------------------------------------------------------

    def cells(self) -> list[Cell]:
        """The declared cells as they are in the workbook now (re-read when the file changes)."""
        return self._current().cells

    def _current(self) -> _Known:
        path = self.source()
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        known = self._known
        if known is not None and known.stamp == stamp and stamp is not None:
            return known
        book = self._open(wb.load)
        cells, problems = [], []
        for i, declared in enumerate(self.declared, 1):
            try:
                cells.append(self._cell(book, declared))
            except _Bad as exc:
                problems.append(f"{self._where(i, declared.written)}: {exc}.")
        if problems:
            raise RecipeError(problems)
        known = _Known(cells, stamp, {c.ref.key: c for c in cells}, {c.ref.key: str(c.ref) for c in cells},
                       [c.parameter for c in cells])
        with self.lock:
            self._known = known
        return known

    def _open(self, reader):
        path = self.source()
        if not path.exists():
            raise OvernightError(f"The workbook {path} does not exist (surface path = {self.config['path']!r}).")
        try:
            return reader(path)
        except wb.WorkbookError as exc:
            raise OvernightError(f"The surface workbook {exc}.") from None

    def _cell(self, book, declared: Declared) -> Cell:
        ws = wb.sheet_named(book, declared.ref.sheet)
        if ws is None:
            raise _Bad(f"there is no sheet {declared.ref.sheet!r} in {self.source().name} (its sheets: "
                       + ", ".join(repr(s) for s in book.sheetnames) + ")")
        ref = Ref(ws.title, declared.ref.cell)
        accepts = replace(declared.accepts, name=str(ref))
        row, col = wb.split_cell(ref.cell)
        cell = ws.cell(row, col)
        value = cell.value
        if wb.is_formula(value):
            raise _Bad(f"{ref} holds a formula ({wb.formula_text(value)}); only cells with a typed value can change, "
                       f"so declare the cells that formula reads instead")
        if value is None or value == "":
            raise _Bad(f"{ref} is empty; an editable cell must hold its starting value")
        if type(value).__name__ in ("datetime", "date", "time", "timedelta"):
            raise _Bad(f"{ref} holds a date or time ({value}); only numbers, text and true/false can change")
        if accepts.choices is None and (isinstance(value, str) or isinstance(value, bool)):
            raise _Bad(f"{ref} holds {wb.format_value(value)}, not a number, but is declared with min and max; "
                       f"declare its choices instead")
        if isinstance(value, float) and value.is_integer() and accepts.integer:
            value = int(value)
        label = declared.label if declared.label is not None else wb.label_of(ws, ref.cell)
        note = cell.comment.text if cell.comment is not None else ""
        return Cell(accepts, ref, value, label, note)

    def _values(self, view: str) -> dict[Ref, Any]:
        lines, problems = wb.parse_kept(view)
        if problems:
            raise OvernightError(f"This is not a view of {self.source().name}: {problems[0]}.")
        cells = {key: c.ref for key, c in self._current().by_key.items()}
        return {cells.get(line.ref.key, line.ref): line.value for line in lines}

    def _write(self, patcher: wb.Patcher, values: dict[Ref, Any], compress: bool = True) -> bytes:
        try:
            return patcher.write(values, compress=compress, results=self.results(values))
        except wb.WorkbookError as exc:
            raise OvernightError(f"Cannot write {self.source().name}: {exc}.") from None

    # -- the recipe's declarations ----------------------------------------------------------

    def _declare(self, raw: list) -> list[Declared]:
        """The declared cells; every declaration that cannot be used is reported at once."""
        if not raw:
            raise RecipeError(f"{self._where(None, None)}: 'cells' is empty; declare at least one editable cell.")
        out, problems, seen = [], [], {}
        for i, item in enumerate(raw, 1):
            written = item.get("ref") if isinstance(item, dict) and isinstance(item.get("ref"), str) else None
            try:
                declared = _declared(item)
            except (_Bad, parameters.Invalid) as exc:
                problems.append(f"{self._where(i, written)}: {exc}.")
                continue
            if declared.ref.key in seen:
                problems.append(f"{self._where(i, written)}: {declared.ref} is declared twice (also cells #{seen[declared.ref.key]}).")
                continue
            seen[declared.ref.key] = i
            out.append(declared)
        if problems:
            raise RecipeError(problems)
        return out

    def _where(self, index: int | None, written: str | None) -> str:
        """`recipe.toml:LINE: [surface] cells #N (REF)`: where a declaration is."""
        return parameters.where(self.recipe_dir, "cells", index, written)


class _Bad(Exception):
    """A declaration or a cell that cannot be used; the message names the problem."""


def _declared(item: Any) -> Declared:
    values = parameters.read(item, CELL_KEYS, EXAMPLE)
    ref = wb.parse_ref(values["ref"])
    if ref is None:
        raise _Bad(f"'ref' = {values['ref']!r} is not a cell address such as \"Inputs!B2\" or \"'Cash flow'!C5\"")
    return Declared(ref, values["ref"], values["label"], parameters.declare(str(ref), values))


def _names(cells) -> str:
    return ", ".join(str(c.ref) for c in cells)


@hookimpl
def overnight_register_surfaces(register):
    register(SpreadsheetSurface)
