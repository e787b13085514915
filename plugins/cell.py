"""Metric `cell`: the value of one workbook cell, recalculated by a real formula engine.

The workbook is compiled once per run by the `formulas` package, and only the cells
the target depends on are compiled: a formula the engine cannot handle elsewhere in
the workbook does not matter unless the target needs it. Each measurement then only
sets the editable cells and recalculates. Guards of kind `cell` work the same way.

What is checked before the run starts, so nothing is spent on a run that cannot work:
the target exists and holds a formula or a number; no cell it depends on uses a
function the engine does not know (the error names the function and the cell); and
the engine can compute it (a cell that refers to itself, like `ROW(B9)` inside B9,
is named as the cause when it cannot).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from overnight.core.contracts import Measurement, MeasureRequest, Metric, Surface
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

from . import workbook as wb
from .workbook import Ref

BOOK = "book.xlsx"  # the name the engine knows the run's private copy by
# A cell or an array formula's range (its formula lives in the top-left cell).
_NODE = re.compile(r"^'\[[^\]]*\](?P<sheet>.*)'!(?P<cell>[A-Z]+[0-9]+)(?::[A-Z]+[0-9]+)?$")


class CellMetric(Metric):
    name = "cell"
    summary = "The value of one workbook cell, recalculated with the formulas engine; also a guard."
    options = {
        "ref": Option(str, 'the cell to read, such as "Model!B12" or "\'Cash flow\'!G14"', required=True),
    }
    goal = "maximize"
    deterministic = True
    reads = "view"  # the inputs come from the view; the compiled model needs no workbook file

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        ref = wb.parse_ref(self.config["ref"])
        if ref is None:
            raise OvernightError(
                f"{recipe_dir / 'recipe.toml'}: [metric] ref = {self.config['ref']!r} is not a cell address "
                f"such as \"Model!B12\" or \"'Cash flow'!G14\"."
            )
        self.ref = ref
        self.model: Model | None = None
        self.inputs: list[Ref] = []

    def describe(self) -> str:
        return f"cell {self.ref} ({self.goal})"

    def prepare(self, surface: Surface) -> None:
        source = surface.source()
        if source.suffix.lower() not in wb.SUFFIXES:
            raise OvernightError(
                f"The cell metric reads a workbook, but the surface's file {source.name} is not an .xlsx workbook."
            )
        self.inputs = [r for r in (wb.parse_ref(p.name) for p in surface.parameters()) if r is not None]
        start = surface.values_of(surface.read())
        values = {r: start[str(r)] for r in self.inputs if str(r) in start}
        self.model = Model(source, self.ref, self.inputs)
        self.model.check(values)

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        begin = time.monotonic()
        if self.model is None:
            raise OvernightError("The cell metric was not prepared before measuring.")
        values = self._inputs(artifact, request.view)
        value = self.model.calculate(values)
        return self._measurement(value, values, time.monotonic() - begin)

    def _inputs(self, artifact: Path, view: str) -> dict[Ref, Any]:
        """The editable cells' values: from the view the surface materialized, or, when
        there is none, read back from the materialized workbook."""
        wanted = {r.key: r for r in self.inputs}
        if view:
            lines, problems = wb.parse(view)
            found = {wanted[line.ref.key]: line.value for line in lines if line.ref.key in wanted}
            if not problems and len(found) == len(wanted):
                return found
        try:
            book = wb.load(artifact)
        except wb.WorkbookError as exc:
            raise OvernightError(f"The cell metric cannot read the candidate workbook: {exc}.") from None
        out = {}
        for r in self.inputs:
            ws = wb.sheet_named(book, r.sheet)
            if ws is not None:
                row, col = wb.split_cell(r.cell)
                out[r] = ws.cell(row, col).value
        return out

    def _measurement(self, value: Any, values: dict[Ref, Any], seconds: float) -> Measurement:
        if isinstance(value, Error):
            origin = self.model.origin(values)
            where = ""
            if origin and origin[0] != self.model.target:
                where = f"; the error starts at {origin[0]}" + (f" ({origin[1]})" if origin[1] else "")
            return Measurement.crash(f"{self.model.target} is {value.code} after recalculation (a formula error){where}",
                                     seconds=seconds)
        if isinstance(value, bool):
            return Measurement(float(value), seconds=seconds)
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                return Measurement.crash(f"{self.model.target} is {value} after recalculation, not a finite number",
                                         seconds=seconds)
            return Measurement(float(value), seconds=seconds)
        if value is None or value == "":
            return Measurement.crash(f"{self.model.target} is empty after recalculation, not a number", seconds=seconds)
        return Measurement.crash(f"{self.model.target} holds {wb.format_value(value)} after recalculation, not a number",
                                 seconds=seconds)


class Error:
    """A formula error value (#DIV/0!, #REF!, #VALUE!, ...) as the metric reports it."""

    def __init__(self, code: str):
        self.code = code


class Model:
    """One workbook cell compiled by the `formulas` engine, with the cells it depends on.

    Built once; `calculate` only sets the editable cells and recomputes the target."""

    def __init__(self, path: Path, target: Ref, inputs: list[Ref]):
        self.path = path
        self.lock = threading.Lock()
        book = self._load(path)
        self.book = book
        ws = wb.sheet_named(book, target.sheet)
        if ws is None:
            raise OvernightError(f"The cell metric's ref {target} names a sheet that {path.name} does not have "
                                 f"(its sheets: {', '.join(repr(s) for s in book.sheetnames)}).")
        self.target = Ref(ws.title, target.cell)
        row, col = wb.split_cell(target.cell)
        held = ws.cell(row, col).value
        input_keys = {r.key for r in inputs}
        if held is None or held == "":
            raise OvernightError(f"The cell metric's target {self.target} in {path.name} is empty; "
                                 f"it needs a cell that holds a formula.")
        if isinstance(held, str) and not wb.is_formula(held):
            raise OvernightError(f"The cell metric's target {self.target} in {path.name} holds the text "
                                 f"{wb.format_value(held)}, not a number or a formula.")
        if not wb.is_formula(held) and self.target.key not in input_keys:
            raise OvernightError(f"The cell metric's target {self.target} in {path.name} holds a typed value "
                                 f"({wb.format_value(held)}), not a formula, so no change to the editable cells can move it.")
        self.engine, self.nodes = self._compile(path, self.target, inputs)
        self.target_node = _node(self.target)
        # Only the editable cells the target depends on are inputs of the compiled function.
        self.declared = inputs
        self.inputs = [r for r in inputs if _node(r) in self.engine.dsp.data_nodes]
        self.func = None

    def check(self, values: dict[Ref, Any]) -> None:
        """Recalculates once with the starting values; an error names the cause before the run."""
        self._unsupported()
        if self.declared and not self.inputs:
            raise OvernightError(f"{self.target} in {self.path.name} does not depend on any editable cell "
                                 f"({', '.join(str(r) for r in self.declared)}), so no experiment could change it.")
        solution = self._solve(values)
        if self.target_node not in solution:
            raise OvernightError(self._why_not_computed(solution))
        try:
            with _quiet():
                self.func = self.engine.compile(inputs=[_node(r) for r in self.inputs], outputs=[self.target_node])
        except Exception as exc:
            raise OvernightError(f"The formula engine cannot compile {self.target} in {self.path.name}: {exc}.") from None
        value = self.calculate(values)
        if isinstance(value, str) and value != "":
            raise OvernightError(f"The cell metric's target {self.target} in {self.path.name} computes to the text "
                                 f"{wb.format_value(value)}, not a number.")
        if value is None or value == "":
            raise OvernightError(f"The cell metric's target {self.target} in {self.path.name} computes to nothing "
                                 f"(an empty cell), not a number.")

    def calculate(self, values: dict[Ref, Any]) -> Any:
        args = [values.get(r) for r in self.inputs]
        with self.lock:
            result = self.func(*args)
        return _plain(result)

    def origin(self, values: dict[Ref, Any]) -> tuple[Ref, str] | None:
        """The first cell, in calculation order, whose value is a formula error (where it
        starts), with its formula."""
        solution = self._solve(values)
        for node, value in solution.items():
            ref = _ref_of(node, self.book)
            if ref is not None and isinstance(_plain(value), Error):
                return ref, self._formula(ref)
        return None

    # -- building ------------------------------------------------------------------------------

    @staticmethod
    def _load(path: Path):
        try:
            return wb.load(path)
        except wb.WorkbookError as exc:
            raise OvernightError(f"The cell metric cannot read the workbook: {exc}.") from None

    def _compile(self, path: Path, target: Ref, inputs: list[Ref]):
        import formulas

        # A private copy under a plain name: the engine reads it by name, and the user's
        # file name may hold characters its reference syntax does not allow.
        folder = Path(tempfile.mkdtemp(prefix="overnight-cell-"))
        try:
            shutil.copyfile(path, folder / BOOK)
            engine = formulas.ExcelModel()
            engine.basedir = str(folder)
            with _quiet():
                engine.from_ranges(_node(target))
                engine.finish(complete=False)
        except OvernightError:
            raise
        except Exception as exc:
            raise OvernightError(f"The formula engine cannot read {path.name} to compute {target}: "
                                 f"{type(exc).__name__}: {exc}.") from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return engine, list(engine.cells)

    def _solve(self, values: dict[Ref, Any]) -> dict:
        inputs = {_node(r): values[r] for r in self.inputs if r in values}
        with self.lock, _quiet():
            return dict(self.engine.calculate(inputs=inputs))

    def _unsupported(self) -> None:
        """Every function the target's formulas use must be one the engine knows."""
        import formulas
        from formulas.tokens.function import Function

        known = _functions()
        names = {n.upper() for n in self.book.defined_names}  # LAMBDA functions the workbook defines
        for node in self.nodes:
            ref = _ref_of(node, self.book)
            formula = self._formula(ref) if ref else None
            if not formula:
                continue
            try:
                tokens = formulas.Parser().ast(formula)[0]
            except Exception as exc:
                raise OvernightError(f"The formula engine cannot read the formula of {ref} ({formula}), which "
                                     f"{self.target} depends on: {exc}.") from None
            for token in tokens:
                if isinstance(token, Function):
                    name = token.name.upper()
                    if name not in known and name not in names:
                        shown = name.removeprefix("_XLFN.").removeprefix("_XLWS.")
                        which = "" if ref == self.target else f", which {self.target} depends on"
                        raise OvernightError(
                            f"The formula engine (formulas) does not support the function {shown}, used in {ref} "
                            f"({formula}){which}; choose another cell or rewrite that formula."
                        )

    def _why_not_computed(self, solution: dict) -> str:
        """Names the cell that stops the calculation, and why when it can tell."""
        stuck = [n for n in self.nodes if n not in solution and _ref_of(n, self.book) is not None]
        for node in stuck:
            cell = self.engine.cells.get(node)
            if cell is not None and node in (cell.inputs or {}):
                ref = _ref_of(node, self.book)
                return (f"The formula engine (formulas) cannot compute {self.target} in {self.path.name}: it depends on "
                        f"{ref}, whose formula ({self._formula(ref)}) refers to its own cell, which the engine treats as "
                        f"a circular reference. Choose another cell, or make that formula not refer to itself.")
        first = next((_ref_of(n, self.book) for n in stuck if _ref_of(n, self.book) != self.target), None)
        cause = f"; it depends on {first} ({self._formula(first)}), which cannot be computed either (a circular reference?)" if first else ""
        return f"The formula engine (formulas) cannot compute {self.target} in {self.path.name}{cause}."

    def _formula(self, ref: Ref) -> str:
        ws = wb.sheet_named(self.book, ref.sheet)
        if ws is None:
            return ""
        row, col = wb.split_cell(ref.cell)
        value = ws.cell(row, col).value
        return wb.formula_text(value) if wb.is_formula(value) else ""


def _node(ref: Ref) -> str:
    """The engine's name for a cell of the private copy."""
    from formulas import Ranges

    return Ranges().push(f"'[{BOOK}]{ref.sheet}'!{ref.cell}").ranges[0]["name"]


def _ref_of(node: Any, book) -> Ref | None:
    """A single-cell engine node back to the workbook's own address; None for other nodes."""
    m = _NODE.match(node) if isinstance(node, str) else None
    if not m:
        return None
    ws = wb.sheet_named(book, m["sheet"])
    return Ref(ws.title, m["cell"]) if ws is not None else None


def _plain(result: Any) -> Any:
    """An engine result (a Ranges or array of one cell) to a Python value or an Error."""
    import numpy
    import schedula
    from formulas.tokens.operand import XlError

    value = getattr(result, "value", result)
    while isinstance(value, (numpy.ndarray, list, tuple)):
        flat = numpy.asarray(value, dtype=object).ravel()
        value = flat[0] if flat.size else None
        value = getattr(value, "value", value) if not isinstance(value, XlError) else value
    if isinstance(value, XlError):
        return Error(str(value))
    if value is schedula.EMPTY:
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


_FUNCTIONS: set[str] | None = None


def _functions() -> set[str]:
    global _FUNCTIONS
    if _FUNCTIONS is None:
        from formulas.functions import get_functions, not_implemented

        _FUNCTIONS = {name for name, f in get_functions().items() if f is not not_implemented}
    return _FUNCTIONS


@contextlib.contextmanager
def _quiet():
    """The engine draws progress bars and logs warnings on stderr; a run keeps stderr for itself."""
    import logging

    log = logging.getLogger("formulas")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        log.setLevel(level)


@hookimpl
def overnight_register_metrics(register):
    register(CellMetric)
