"""Metric `cell`: the value of one workbook cell, recalculated by a real formula engine.

The workbook is compiled once per run by the `formulas` package (see plugins/engine.py),
and only the cells the targets depend on are compiled. The metric and every guard of
kind `cell` on the same surface share one compiled model: one evaluation per candidate
gives them all their values. Each measurement only sets the editable cells and
recalculates.

What is checked before the run starts (and by `overnight recipes validate`), so nothing
is spent on a run that cannot work: the target exists and holds a formula or a number;
no cell it depends on uses a function the engine does not know (the error names the
function and the cell); and the engine can compute it (a cell that refers to itself,
like `ROW(B9)` inside B9, is named as the cause when it cannot). Such a workbook is
broken, not risky: `overnight check` exits 2 on it.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from overnight.core.contracts import Measurement, MeasureRequest, Metric, Surface
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

from . import workbook as wb
from .engine import Error, Model
from .workbook import Ref

# One compiled model per surface, so per run: the metric and its guards add their cells to it.
_MODELS: "weakref.WeakKeyDictionary[Surface, Model]" = weakref.WeakKeyDictionary()
_MODELS_LOCK = threading.Lock()


def shared_model(surface: Surface, inputs: list[Ref]) -> Model:
    """The model every cell metric of this surface adds its target to."""
    with _MODELS_LOCK:
        model = _MODELS.get(surface)
        if model is None or model.path != surface.source() or model.declared != inputs:
            model = _MODELS[surface] = Model(surface.source(), inputs)
        return model


INSTANT_MOST = 0.25  # seconds an evaluation may take for the metric to stay instant


class CellMetric(Metric):
    name = "cell"
    summary = "The value of one workbook cell, recalculated with the formulas engine; also a guard."
    options = {
        "ref": Option(str, 'the cell to read, such as "Model!B12" or "\'Cash flow\'!G14"', required=True),
    }
    goal = "maximize"
    deterministic = True
    # Measured in the loop's own thread: a compiled evaluation is in-process work that never waits and
    # holds the interpreter lock throughout, so a worker thread would add its hand-off (about a
    # millisecond of CPU each on a busy machine) and let nothing else run meanwhile.
    # A workbook whose evaluation turns out slow gives that up (`measure`): a stop then need not wait
    # for it, and the time limit applies again.
    instant = True
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
        self.target = ref  # as the workbook spells its sheet, once prepared
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
        model = shared_model(surface, self.inputs)
        self.target = model.add(self.ref, values)
        self.model = model

    def validate(self, surface: Surface) -> list[str]:
        """What `overnight recipes validate` reports: the cell compiled and computed as `run` would."""
        try:
            self.prepare(surface)
        except OvernightError as exc:
            return [exc.message]
        return []

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        begin = time.monotonic()
        if self.model is None:
            raise OvernightError("The cell metric was not prepared before measuring.")
        values = self._inputs(artifact, request.view)
        value = self.model.calculate(values)[self.target]
        seconds = time.monotonic() - begin
        if seconds > INSTANT_MOST:
            self.instant = False  # measured in a worker thread from now on
        return self._measurement(value, values, seconds)

    def _inputs(self, artifact: Path, view: str) -> dict[Ref, Any]:
        """The editable cells' values: from the view the surface materialized, or, when
        there is none, read back from the materialized workbook."""
        wanted = {r.key: r for r in self.inputs}
        if view:
            lines, problems = wb.parse_kept(view)
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
            if origin and origin[0] != self.target:
                where = f"; the error starts at {origin[0]}" + (f" ({origin[1]})" if origin[1] else "")
            return Measurement.crash(f"{self.target} is {value.code} after recalculation (a formula error){where}",
                                     seconds=seconds)
        if isinstance(value, bool):
            return Measurement(float(value), seconds=seconds)
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                return Measurement.crash(f"{self.target} is {value} after recalculation, not a finite number",
                                         seconds=seconds)
            return Measurement(float(value), seconds=seconds)
        if value is None or value == "":
            return Measurement.crash(f"{self.target} is empty after recalculation, not a number", seconds=seconds)
        return Measurement.crash(f"{self.target} holds {wb.format_value(value)} after recalculation, not a number",
                                 seconds=seconds)


@hookimpl
def overnight_register_metrics(register):
    register(CellMetric)
