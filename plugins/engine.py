"""The `formulas` engine, for the `cell` metric and the `spreadsheet` surface's copies.

`Model` compiles the cells a run's cell metrics and guards read, and only the cells
they depend on, into one function: each evaluation sets the editable cells once and
returns every target at once (a metric and its guards share it). A formula the engine
cannot handle elsewhere in the workbook does not matter unless a target needs it.

`Recalculation` loads the whole workbook, so a copy or an applied file carries each
formula's value as well as its formula: readers without a calculation engine (pandas,
openpyxl's `data_only=True`, file previews) then see numbers, not empty cells.

Both work on a private copy named `book.xlsx`: the engine reads a workbook by name, and
the user's file name may hold characters its reference syntax does not allow.
"""

from __future__ import annotations

import contextlib
import gc
import io
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from overnight.core.errors import OvernightError

from . import workbook as wb
from .workbook import Ref

BOOK = "book.xlsx"  # the name the engine knows its private copy by
# A cell or an array formula's range (its formula lives in the top-left cell).
_NODE = re.compile(r"^'\[[^\]]*\](?P<sheet>.*)'!(?P<cell>[A-Z]+[0-9]+)(?::(?P<end>[A-Z]+[0-9]+))?$")
# Evaluations remembered (about half a kilobyte each): a metric and its guards read the same candidate one
# after another, and a run's confirmation measures its baseline and its best again, which a model that
# always gives the same values for the same inputs need not compute twice.
CACHED = 4096


class Error:
    """A formula error value (#DIV/0!, #REF!, #VALUE!, ...) as the metric reports it."""

    def __init__(self, code: str):
        self.code = code

    def __eq__(self, other) -> bool:
        return isinstance(other, Error) and other.code == self.code

    def __repr__(self) -> str:
        return f"Error({self.code!r})"


def broken(message: str) -> OvernightError:
    """A workbook a run cannot use: `overnight check` calls that broken (exit 2), as a malformed recipe."""
    return OvernightError(message, exit_code=2)


class Model:
    """The target cells of one workbook, compiled together with the cells they depend on.

    `add` checks a target and recompiles (before the run); `calculate` sets the editable
    cells and returns every target's value from one evaluation."""

    def __init__(self, path: Path, inputs: list[Ref]):
        self.path = path
        self.declared = inputs  # the editable cells
        self.book = _load(path)
        self.lock = threading.Lock()
        self.targets: list[Ref] = []
        self.inputs: list[Ref] = []  # the editable cells some target depends on
        self.engine = None
        self.checked: set[str] = set()  # engine nodes whose functions were checked
        self.func = None
        self.cache: OrderedDict[tuple, dict[Ref, Any]] = OrderedDict()
        self.evaluations = 0  # computed, not found in the cache (the benches count them)

    # -- before the run ------------------------------------------------------------------

    def add(self, ref: Ref, values: dict[Ref, Any]) -> Ref:
        """Compiles `ref` in with the other targets and computes it once from the starting
        values; an error names the cause before anything is spent. Returns the cell as the
        workbook spells its sheet."""
        target = self._resolve(ref)
        if target in self.targets:
            return target
        with self.lock:
            # Compiled again below with every target: the old model goes first, so a large workbook
            # is never held twice (some 35 KB a formula each). Should this target be refused, the
            # others compile again when next used (`_compiled`).
            self.engine = self.func = None
        engine = _compile(self.path, [*self.targets, target])
        new = [n for n in engine.cells if n not in self.checked]
        self._unsupported(new, target)
        upstream = _ancestors(engine.dsp.dmap, node(target))
        if self.declared and not any(node(r) in upstream for r in self.declared):
            raise broken(f"{target} in {self.path.name} does not depend on any editable cell "
                         f"({', '.join(str(r) for r in self.declared)}), so no experiment could change it.")
        inputs = _inputs(engine, self.declared)
        solution = _solve(engine, inputs, values, self.lock)
        if node(target) not in solution:
            raise broken(self._why_not_computed(engine, target, solution, upstream))
        targets = [*self.targets, target]
        try:
            func = _function(engine, inputs, targets)
        except Exception as exc:
            raise broken(f"The formula engine cannot compile {target} in {self.path.name}: {exc}.") from None
        value = plain(solution[node(target)])
        if isinstance(value, str) and value != "":
            raise broken(f"The cell metric's target {target} in {self.path.name} computes to the text "
                         f"{wb.format_value(value)}, not a number.")
        if value is None or value == "":
            raise broken(f"The cell metric's target {target} in {self.path.name} computes to nothing "
                         f"(an empty cell), not a number.")
        with self.lock:
            self.engine, self.func, self.inputs, self.targets = engine, func, inputs, targets
            self.checked.update(new)
            self.cache.clear()
        return target

    # -- each measurement ----------------------------------------------------------------

    def calculate(self, values: dict[Ref, Any]) -> dict[Ref, Any]:
        """Every target's value (a number, text, None or an Error) for these editable cells."""
        with self.lock:
            self._compiled()
            args = [values.get(r) for r in self.inputs]
            key = tuple((type(a).__name__, a) for a in args)
            found = self.cache.get(key)
            if found is not None:
                self.cache.move_to_end(key)
                return found
            result = self.func(*args)
            self.evaluations += 1
            if len(self.targets) == 1:
                result = [result]
            found = {t: plain(r) for t, r in zip(self.targets, result)}
            self.cache[key] = found
            if len(self.cache) > CACHED:
                self.cache.popitem(last=False)
        return found

    def origin(self, values: dict[Ref, Any]) -> tuple[Ref, str] | None:
        """The first cell, in calculation order, whose value is a formula error (where it
        starts), with its formula."""
        with self.lock:
            self._compiled()
        solution = _solve(self.engine, self.inputs, values, self.lock)
        for name, value in solution.items():
            ref = ref_of(name, self.book)
            if ref is not None and isinstance(plain(value), Error):
                return ref, self.formula(ref)
        return None

    def _compiled(self) -> None:
        """Compiles the targets again when the last `add` let them go and then refused its own
        target (called under the lock). A run never needs it: a refused target stops it first."""
        if self.func is None and self.targets:
            engine = _compile(self.path, self.targets)
            self.inputs = _inputs(engine, self.declared)
            self.engine, self.func = engine, _function(engine, self.inputs, self.targets)

    # -- checks ----------------------------------------------------------------------------

    def _resolve(self, ref: Ref) -> Ref:
        ws = wb.sheet_named(self.book, ref.sheet)
        if ws is None:
            raise broken(f"The cell metric's ref {ref} names a sheet that {self.path.name} does not have "
                         f"(its sheets: {', '.join(repr(s) for s in self.book.sheetnames)}).")
        target = Ref(ws.title, ref.cell)
        row, col = wb.split_cell(ref.cell)
        held = ws.cell(row, col).value
        if held is None or held == "":
            raise broken(f"The cell metric's target {target} in {self.path.name} is empty; "
                         f"it needs a cell that holds a formula.")
        if isinstance(held, str) and not wb.is_formula(held):
            raise broken(f"The cell metric's target {target} in {self.path.name} holds the text "
                         f"{wb.format_value(held)}, not a number or a formula.")
        if not wb.is_formula(held) and target.key not in {r.key for r in self.declared}:
            raise broken(f"The cell metric's target {target} in {self.path.name} holds a typed value "
                         f"({wb.format_value(held)}), not a formula, so no change to the editable cells can move it.")
        return target

    def _unsupported(self, nodes: list[str], target: Ref) -> None:
        """Every function the target's formulas use must be one the engine knows."""
        import formulas
        from formulas.tokens.function import Function

        known = functions()
        names = {n.upper() for n in self.book.defined_names}  # LAMBDA functions the workbook defines
        for name in nodes:
            ref = ref_of(name, self.book)
            formula = self.formula(ref) if ref else None
            if not formula:
                continue
            try:
                tokens = formulas.Parser().ast(formula)[0]
            except Exception as exc:
                raise broken(f"The formula engine cannot read the formula of {ref} ({formula}), which "
                             f"{target} depends on: {exc}.") from None
            for token in tokens:
                if isinstance(token, Function):
                    upper = token.name.upper()
                    if upper not in known and upper not in names:
                        shown = upper.removeprefix("_XLFN.").removeprefix("_XLWS.")
                        which = "" if ref == target else f", which {target} depends on"
                        raise broken(
                            f"The formula engine (formulas) does not support the function {shown}, used in {ref} "
                            f"({formula}){which}; choose another cell or rewrite that formula."
                        )

    def _why_not_computed(self, engine, target: Ref, solution: dict, upstream: set[str]) -> str:
        """Names the cell that stops the calculation, and why when it can tell."""
        stuck = [n for n in engine.cells if n in upstream and n not in solution and ref_of(n, self.book) is not None]
        for name in stuck:
            cell = engine.cells.get(name)
            if cell is not None and name in (cell.inputs or {}):
                ref = ref_of(name, self.book)
                return (f"The formula engine (formulas) cannot compute {target} in {self.path.name}: it depends on "
                        f"{ref}, whose formula ({self.formula(ref)}) refers to its own cell, which the engine treats as "
                        f"a circular reference. Choose another cell, or make that formula not refer to itself.")
        first = next((ref_of(n, self.book) for n in stuck if ref_of(n, self.book) != target), None)
        cause = f"; it depends on {first} ({self.formula(first)}), which cannot be computed either (a circular reference?)" if first else ""
        return f"The formula engine (formulas) cannot compute {target} in {self.path.name}{cause}."

    def formula(self, ref: Ref) -> str:
        ws = wb.sheet_named(self.book, ref.sheet)
        if ws is None:
            return ""
        row, col = wb.split_cell(ref.cell)
        value = ws.cell(row, col).value
        return wb.formula_text(value) if wb.is_formula(value) else ""


class Recalculation:
    """The whole workbook in the engine: the value of each formula a copy should carry.

    Loaded once (every formula is compiled, which takes a while on a large workbook);
    each call then computes only what the editable cells feed."""

    def __init__(self, path: Path, inputs: list[Ref]):
        import formulas

        folder = Path(tempfile.mkdtemp(prefix="overnight-recalc-"))
        try:
            shutil.copyfile(path, folder / BOOK)
            with quiet(), collecting():
                engine = formulas.ExcelModel().loads(str(folder / BOOK)).finish()
                start = engine.calculate()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.engine, self.lock = engine, threading.Lock()
        self.formulas = [n for n, c in engine.cells.items() if getattr(c, "inputs", None) is not None]
        nodes = {r: node(r) for r in inputs}
        self.inputs = {r: n for r, n in nodes.items() if n in engine.dsp.data_nodes}
        fed = _descendants(engine.dsp.dmap, list(self.inputs.values()))
        self.fed = [n for n in self.formulas if n in fed]
        # Formulas no editable cell feeds keep their value whatever a copy holds.
        self.fixed = _cells({n: start[n] for n in self.formulas if n not in fed and n in start})

    def values(self, values: dict[Ref, Any]) -> tuple[dict[tuple, Any], dict[tuple, Any]]:
        """(fresh, fixed), keyed by (case-folded sheet, cell). `fresh`: the formulas the
        editable cells feed, a value or None where the engine cannot compute one (the
        cached value no longer holds); `fixed`: the others' values, for formulas the file
        has no cached value of."""
        given = {n: values[r] for r, n in self.inputs.items() if r in values}
        with self.lock, quiet():
            solution = self.engine.calculate(inputs=given, outputs=self.fed) if self.fed else {}
        fresh = {key: None for key in _cells({n: None for n in self.fed})}
        fresh.update(_cells({n: solution[n] for n in self.fed if n in solution}))
        return fresh, self.fixed


# -- names and values ------------------------------------------------------------------------


def node(ref: Ref) -> str:
    """The engine's name for a cell of the private copy."""
    from formulas import Ranges

    return Ranges().push(f"'[{BOOK}]{ref.sheet}'!{ref.cell}").ranges[0]["name"]


def ref_of(name: Any, book) -> Ref | None:
    """A single-cell engine node back to the workbook's own address; None for other nodes."""
    m = _NODE.match(name) if isinstance(name, str) else None
    if not m:
        return None
    ws = wb.sheet_named(book, m["sheet"])
    return Ref(ws.title, m["cell"]) if ws is not None else None


def plain(result: Any) -> Any:
    """An engine result (a Ranges or array of one cell) to a Python value or an Error."""
    import numpy

    value = getattr(result, "value", result)
    if isinstance(value, (numpy.ndarray, list, tuple)):
        flat = numpy.asarray(value, dtype=object).ravel()
        value = flat[0] if flat.size else None
    return _scalar(value)


def _scalar(value: Any) -> Any:
    import schedula
    from formulas.tokens.operand import XlError

    value = getattr(value, "value", value) if not isinstance(value, XlError) else value
    if isinstance(value, XlError):
        return Error(str(value))
    if value is schedula.EMPTY:
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _cells(results: dict[str, Any]) -> dict[tuple, Any]:
    """Engine results by (case-folded sheet, cell); an array formula's range gives each of its cells."""
    import numpy

    out: dict[tuple, Any] = {}
    for name, result in results.items():
        m = _NODE.match(name)
        if not m:
            continue
        sheet = m["sheet"].casefold()
        if not m["end"]:
            out[(sheet, m["cell"])] = None if result is None else plain(result)
            continue
        top, left = wb.split_cell(m["cell"])
        grid = numpy.asarray(getattr(result, "value", result), dtype=object) if result is not None else None
        bottom, right = wb.split_cell(m["end"])
        for r in range(top, bottom + 1):
            for c in range(left, right + 1):
                inside = grid is not None and grid.ndim == 2 and r - top < grid.shape[0] and c - left < grid.shape[1]
                out[(sheet, f"{_column(c)}{r}")] = _scalar(grid[r - top, c - left]) if inside else None
    return out


def _column(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# -- the engine ---------------------------------------------------------------------------------


def _load(path: Path):
    try:
        return wb.load(path)
    except wb.WorkbookError as exc:
        raise broken(f"The cell metric cannot read the workbook: {exc}.") from None


def _compile(path: Path, targets: list[Ref]):
    """The engine holding these cells and every cell they depend on, nothing else."""
    import formulas

    folder = Path(tempfile.mkdtemp(prefix="overnight-cell-"))
    try:
        shutil.copyfile(path, folder / BOOK)
        engine = formulas.ExcelModel()
        engine.basedir = str(folder)
        with quiet(), collecting():
            engine.from_ranges(*[node(t) for t in targets])
            engine.finish(complete=False)
    except Exception as exc:
        shown = ", ".join(str(t) for t in targets)
        raise broken(f"The formula engine cannot read {path.name} to compute {shown}: "
                     f"{type(exc).__name__}: {exc}.") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return engine


def _inputs(engine, declared: list[Ref]) -> list[Ref]:
    """The editable cells the engine's cells depend on."""
    return [r for r in declared if node(r) in engine.dsp.data_nodes]


def _function(engine, inputs: list[Ref], targets: list[Ref]):
    """One compiled evaluation: the editable cells in, every target's value out."""
    with quiet(), collecting():
        return engine.compile(inputs=[node(r) for r in inputs], outputs=[node(t) for t in targets])


def _solve(engine, inputs: list[Ref], values: dict[Ref, Any], lock) -> dict:
    given = {node(r): values[r] for r in inputs if r in values}
    with lock, quiet():
        return dict(engine.calculate(inputs=given))


def _ancestors(dmap, start: str) -> set[str]:
    return _walk(dmap.pred, [start])


def _descendants(dmap, starts: list[str]) -> set[str]:
    return _walk(dmap.succ, starts)


def _walk(edges, starts: list[str]) -> set[str]:
    seen, todo = set(starts), list(starts)
    while todo:
        for other in edges.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


_FUNCTIONS: set[str] | None = None


def functions() -> set[str]:
    global _FUNCTIONS
    if _FUNCTIONS is None:
        from formulas.functions import get_functions, not_implemented

        _FUNCTIONS = {name for name, f in get_functions().items() if f is not not_implemented}
    return _FUNCTIONS


@contextlib.contextmanager
def quiet():
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


@contextlib.contextmanager
def collecting():
    """Compiling with the cycle collector on. The engine builds graphs with reference cycles and
    drops most of them (about 35 KB a formula, as much again as the model keeps), which only the
    collector frees; `overnight run` sets up with it paused and then freezes whatever is left
    (cli/run.py), so without this every compile's leftovers would stay for the whole run."""
    if gc.isenabled():
        yield
        return
    gc.enable()
    try:
        yield
    finally:
        gc.collect()  # what is left, before the collector pauses again
        gc.disable()
