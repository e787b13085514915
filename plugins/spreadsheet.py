"""Surface `spreadsheet`: the declared cells of an .xlsx workbook, and nothing else.

The recipe declares which cells may change and how (`min`/`max`/`step`, `integer`,
`log`, or `choices`); every other cell, formula, sheet and style stays as it is. The
view is one line per declared cell (see plugins/workbook.py), so a person, an LLM and
the search agent all read and write the same text.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnight.core.contracts import Parameter, ParametricSurface
from overnight.core.errors import OvernightError, RecipeError
from overnight.core.files import atomic_write
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option, closest

from . import workbook as wb
from .workbook import Ref

CELL_KEYS = ("ref", "min", "max", "step", "integer", "log", "choices", "label")


@dataclass(frozen=True)
class CellSpec:
    """One editable cell as the recipe declares it."""

    ref: Ref
    written: str  # the address as the recipe writes it, for messages
    min: float | None = None
    max: float | None = None
    step: float | None = None
    integer: bool = False
    log: bool = False
    choices: tuple | None = None
    label: str | None = None

    @property
    def numeric(self) -> bool:
        return self.choices is None


@dataclass(frozen=True)
class Cell:
    """A declared cell as found in the workbook."""

    spec: CellSpec
    ref: Ref  # with the sheet name spelled as in the workbook
    value: Any
    label: str
    note: str  # the cell's comment in the workbook, for the rules


class SpreadsheetSurface(ParametricSurface):
    name = "spreadsheet"
    summary = "Declared cells of an .xlsx workbook (bounds or choices each); formulas, sheets and styles are kept."
    options = {
        "path": Option(str, "the workbook, relative to the recipe", required=True),
        "cells": Option(list, 'the editable cells: [{ ref = "Inputs!B2", min = 5, max = 60, step = 0.5 }, ...]', required=True),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.specs = self._specs(self.config["cells"])
        self.lock = threading.Lock()
        self._cells: tuple[tuple, list[Cell]] | None = None  # (file stamp, cells)
        self._patcher: wb.Patcher | None = None

    # -- the contract --------------------------------------------------------------------

    def source(self) -> Path:
        return self.path(self.config["path"])

    def read(self) -> str:
        return wb.render([(c.ref, c.value, c.label) for c in self.cells()])

    def rules(self) -> str:
        lines = ["Change only the values after '=', one line per cell; keep every line and its address.",
                 "Numbers are written plainly (19.5), text in double quotes. The cells and what they accept:"]
        for c in self.cells():
            note = f" Note in the workbook: {' '.join(c.note.split())}" if c.note else ""
            lines.append(f"- {c.ref} ({c.label or 'no label'}): {_accepts(c.spec)}.{note}")
        return "\n".join(lines)

    def problems(self, view: str, base: str) -> list[str]:
        lines, problems = wb.parse(view)
        unreadable = bool(problems)  # a line that cannot be read would also count as missing
        cells = {c.ref.key: c for c in self.cells()}
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
            problem = _check(cell, line.value)
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
        target.write_bytes(self._write(patcher, values, compress=False))
        return target

    def apply(self, view: str, backup_dir: Path) -> Path | None:
        data = self._write(self._open(wb.Patcher), self._values(view))
        return atomic_write(self.source(), data, backup_dir)

    def diff(self, old: str, new: str) -> str:
        """One line per changed cell: label, address, old -> new."""
        try:
            before, after = self.values_of(old), self.values_of(new)
            labels = {str(c.ref): c.label for c in self.cells()}
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
        out = []
        for c in self.cells():
            s = c.spec
            out.append(Parameter(name=str(c.ref), min=s.min, max=s.max, step=s.step, integer=s.integer,
                                 log=s.log, choices=s.choices))
        return out

    def view_from(self, values: dict[str, Any], base: str) -> str:
        """The view holding these values (snapped to each cell's step), other cells as in `base`."""
        cells = self.cells()
        current = self.values_of(base) if base else {}
        by_name = {str(c.ref): c for c in cells}
        unknown = [name for name in values if name not in by_name]
        if unknown:
            raise OvernightError(f"{', '.join(unknown)} is not an editable cell of {self.source().name}.")
        rows = []
        for c in cells:
            name = str(c.ref)
            value = _snap(c.spec, values[name]) if name in values else current.get(name, c.value)
            rows.append((c.ref, value, c.label))
        return wb.render(rows)

    def values_of(self, view: str) -> dict[str, Any]:
        lines, problems = wb.parse(view)
        if problems:
            raise OvernightError(f"This is not a view of {self.source().name}: {problems[0]}.")
        names = {c.ref.key: str(c.ref) for c in self.cells()}
        return {names.get(line.ref.key, str(line.ref)): line.value for line in lines}

    # degenerate(): left as the default. Any assignment inside the declared bounds is a
    # legitimate workbook, so no view should score badly by construction.

    # -- reading the workbook ---------------------------------------------------------------

    def cells(self) -> list[Cell]:
        """The declared cells as they are in the workbook now (re-read when the file changes)."""
        path = self.source()
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self.lock:
            if self._cells and self._cells[0] == stamp and stamp is not None:
                return self._cells[1]
        book = self._open(wb.load)
        cells, problems = [], []
        for i, spec in enumerate(self.specs, 1):
            try:
                cells.append(self._cell(book, spec))
            except _Bad as exc:
                problems.append(f"{self._where(i, spec.written)}: {exc}.")
        if problems:
            raise RecipeError(problems)
        with self.lock:
            self._cells = (stamp, cells)
        return cells

    def _open(self, reader):
        path = self.source()
        if not path.exists():
            raise OvernightError(f"The workbook {path} does not exist (surface path = {self.config['path']!r}).")
        try:
            return reader(path)
        except wb.WorkbookError as exc:
            raise OvernightError(f"The surface workbook {exc}.") from None

    def _cell(self, book, spec: CellSpec) -> Cell:
        ws = wb.sheet_named(book, spec.ref.sheet)
        if ws is None:
            raise _Bad(f"there is no sheet {spec.ref.sheet!r} in {self.source().name} (its sheets: "
                       + ", ".join(repr(s) for s in book.sheetnames) + ")")
        ref = Ref(ws.title, spec.ref.cell)
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
        if spec.numeric and (isinstance(value, str) or isinstance(value, bool)):
            raise _Bad(f"{ref} holds {wb.format_value(value)}, not a number, but is declared with min and max; "
                       f"declare its choices instead")
        if isinstance(value, float) and value.is_integer() and spec.integer:
            value = int(value)
        label = spec.label if spec.label is not None else wb.label_of(ws, ref.cell)
        note = cell.comment.text if cell.comment is not None else ""
        return Cell(spec, ref, value, label, note)

    def _values(self, view: str) -> dict[Ref, Any]:
        lines, problems = wb.parse(view)
        if problems:
            raise OvernightError(f"This is not a view of {self.source().name}: {problems[0]}.")
        cells = {c.ref.key: c.ref for c in self.cells()}
        return {cells.get(line.ref.key, line.ref): line.value for line in lines}

    def _write(self, patcher: wb.Patcher, values: dict[Ref, Any], compress: bool = True) -> bytes:
        try:
            return patcher.write(values, compress=compress)
        except wb.WorkbookError as exc:
            raise OvernightError(f"Cannot write {self.source().name}: {exc}.") from None

    # -- the recipe's declarations ----------------------------------------------------------

    def _specs(self, raw: list) -> list[CellSpec]:
        specs, problems, seen = [], [], {}
        if not raw:
            raise RecipeError(f"{self._where(None, None)}: 'cells' is empty; declare at least one editable cell.")
        for i, item in enumerate(raw, 1):
            try:
                spec = _spec(item)
            except _Bad as exc:
                written = item.get("ref") if isinstance(item, dict) and isinstance(item.get("ref"), str) else None
                problems.append(f"{self._where(i, written)}: {exc}.")
                continue
            if spec.ref.key in seen:
                problems.append(f"{self._where(i, spec.written)}: {spec.ref} is declared twice (also cells #{seen[spec.ref.key]}).")
                continue
            seen[spec.ref.key] = i
            specs.append(spec)
        if problems:
            raise RecipeError(problems)
        return specs

    def _where(self, index: int | None, written: str | None) -> str:
        """`recipe.toml:LINE: [surface] cells #N (REF)`: where a declaration is."""
        file = self.recipe_dir / "recipe.toml"
        line = None
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for needle in ([f'"{written}"', f"'{written}'"] if written else []) + ["cells"]:
            line = next((n for n, text in enumerate(lines, 1) if needle in text), None)
            if line:
                break
        place = f"{file}:{line}" if line else str(file)
        what = "[surface] cells" + (f" #{index}" if index else "") + (f" ({written})" if written else "")
        return f"{place}: {what}"


class _Bad(Exception):
    """A declaration or a cell that cannot be used; the message names the problem."""


def _spec(item: Any) -> CellSpec:
    if not isinstance(item, dict):
        raise _Bad('each cell must be a table like { ref = "Inputs!B2", min = 5, max = 60 }')
    for key in item:
        if key not in CELL_KEYS:
            hint = closest(key, CELL_KEYS)
            raise _Bad(f"unknown key '{key}'" + (f" (did you mean '{hint}'?)" if hint else "")
                       + f"; a cell takes: {', '.join(CELL_KEYS)}")
    written = item.get("ref")
    if not isinstance(written, str):
        raise _Bad("missing 'ref', the cell's address such as \"Inputs!B2\"")
    ref = wb.parse_ref(written)
    if ref is None:
        raise _Bad(f"'ref' = {written!r} is not a cell address such as \"Inputs!B2\" or \"'Cash flow'!C5\"")
    numbers = {}
    for key in ("min", "max", "step"):
        v = item.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise _Bad(f"'{key}' must be a number, not {v!r}")
        numbers[key] = v
    flags = {}
    for key in ("integer", "log"):
        v = item.get(key, False)
        if not isinstance(v, bool):
            raise _Bad(f"'{key}' must be true or false, not {v!r}")
        flags[key] = v
    label = item.get("label")
    if label is not None and not isinstance(label, str):
        raise _Bad(f"'label' must be a string, not {label!r}")
    choices = item.get("choices")
    lo, hi, step = numbers["min"], numbers["max"], numbers["step"]
    if choices is not None:
        if lo is not None or hi is not None or step is not None or flags["integer"] or flags["log"]:
            raise _Bad("give either 'choices' or 'min' and 'max', not both")
        if not isinstance(choices, list) or not choices:
            raise _Bad("'choices' must be a non-empty list such as [\"monthly\", \"yearly\"]")
        for c in choices:
            if not isinstance(c, (str, int, float, bool)):
                raise _Bad(f"a choice must be a number, text or true/false, not {c!r}")
        if len({(type(c), c) for c in choices}) != len(choices):
            raise _Bad("'choices' lists the same value twice")
        return CellSpec(ref, written, choices=tuple(choices), label=label)
    if lo is None or hi is None:
        raise _Bad("declare 'min' and 'max' (the range the value may take), or 'choices'")
    if lo > hi:
        raise _Bad(f"'min' ({lo:g}) is larger than 'max' ({hi:g})")
    if step is not None and step <= 0:
        raise _Bad(f"'step' must be above 0, not {step:g}")
    if flags["integer"] and not all(float(v).is_integer() for v in (lo, hi, step) if v is not None):
        raise _Bad("an integer cell needs whole numbers for 'min', 'max' and 'step'")
    if flags["log"] and lo <= 0:
        raise _Bad(f"a log-scale cell needs 'min' above 0, not {lo:g}")
    if flags["log"] and step is not None:
        raise _Bad("a cell cannot have both a 'step' and a log scale; drop one of them")
    if flags["integer"]:
        lo, hi, step = int(lo), int(hi), int(step) if step is not None else None
    return CellSpec(ref, written, lo, hi, step, flags["integer"], flags["log"], None, label)


def _accepts(s: CellSpec) -> str:
    if s.choices is not None:
        return "one of " + ", ".join(wb.format_value(c) for c in s.choices)
    kind = "a whole number" if s.integer else "a number"
    text = f"{kind} from {wb.format_value(s.min)} to {wb.format_value(s.max)}"
    if s.step:
        text += f" in steps of {wb.format_value(s.step)}"
    if s.log:
        text += " (log scale)"
    return text


def _check(cell: Cell, value: Any) -> str | None:
    """Why a value cannot go into a cell; None when it can."""
    s, ref = cell.spec, cell.ref
    if s.choices is not None:
        if not any(wb.same_value(value, c) for c in s.choices):
            choices = ", ".join(wb.format_value(c) for c in s.choices)
            return f"{ref} = {wb.format_value(value)} is not one of its choices ({choices})"
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{ref} must be a number, not {wb.format_value(value)}"
    if not math.isfinite(value):
        return f"{ref} must be a finite number, not {wb.format_value(value)}"
    if value < s.min:
        return f"{ref} = {wb.format_value(value)} is below its min {wb.format_value(s.min)}"
    if value > s.max:
        return f"{ref} = {wb.format_value(value)} is above its max {wb.format_value(s.max)}"
    if s.integer and not float(value).is_integer():
        return f"{ref} must be a whole number, not {wb.format_value(value)}"
    if s.step and not _on_step(s, value):
        return f"{ref} = {wb.format_value(value)} is not on its steps of {wb.format_value(s.step)} from {wb.format_value(s.min)}"
    return None


def _on_step(s: CellSpec, value: float) -> bool:
    k = (value - s.min) / s.step
    return abs(k - round(k)) <= 1e-9 * max(1.0, abs(k))


def _decimals(x: float) -> int:
    text = repr(float(x))
    if "e" in text:
        mantissa, _, exp = text.partition("e")
        return max(0, len(mantissa.partition(".")[2].rstrip("0")) - int(exp))
    return len(text.partition(".")[2].rstrip("0"))


def _snap(s: CellSpec, value: Any) -> Any:
    """A value from a sampler, as a person would write it: on the step grid, inside the
    bounds, whole for integer cells, and with no 0.30000000000000004 tails."""
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    if s.choices is not None or isinstance(value, (bool, str)):
        return value
    value = min(max(value, s.min), s.max)
    if s.step:
        value = s.min + round((value - s.min) / s.step) * s.step
        if value > s.max + 1e-12:
            value -= s.step
        value = round(value, max(_decimals(s.step), _decimals(s.min)))
    if s.integer:
        return int(round(value))
    value = float(f"{value:.12g}")
    return value


def _names(cells) -> str:
    return ", ".join(str(c.ref) for c in cells)


@hookimpl
def overnight_register_surfaces(register):
    register(SpreadsheetSurface)
