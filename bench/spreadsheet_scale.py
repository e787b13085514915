"""What a workbook of 1,000 to 6,000 formulas costs a run: peak memory, setting up, each evaluation.

Run: python bench/spreadsheet_scale.py [--sizes 1000,3000,6000] [--evaluations 3]. Prints a
table; asserts nothing.

Each workbook is built here with openpyxl as a person's model would be: a sheet of inputs, a
lookup table, and one row a month of units (a chain from the month before), revenue, revenue
by season (VLOOKUP into the table), profit, a trailing-year SUM and a loss flag; a summary
sheet sums and takes the minimum over whole columns from another sheet. The metric is the
total profit and a guard the worst year, so they share most of their cells. Each size runs in
a fresh process that sets up as `overnight run` does (the cycle collector paused until the
metric and guard are prepared, then what is left frozen: cli/run.py), then measures distinct
candidates as the loop does: a copy of the workbook (its formulas' values computed for readers
without an engine, up to spreadsheet.MOST_FORMULAS formulas) and the metric and guard. Times
are CPU time (steadier than wall time on a busy machine); the peak is the process's own.

Before the engine compiled with the collector on (engine.collecting) and let a model go before
compiling it again for the next target, the peaks were 341 MB, 769 MB and 1,096 MB at 1,000, 3,000
and 6,000 formulas; after, 231 MB, 432 MB and 454 MB. Setting up costs more CPU for it (6.5 s, 16 s
and 41 s before; 10 s, 27 s and 56 s after: the collector's own work); each evaluation is unchanged
(1.1 s, 4.2 s and 2.4 s: above spreadsheet.MOST_FORMULAS a copy computes nothing).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = 6  # formulas a month
RECIPE = """
[recipe]
name = "scale"

[surface]
kind = "spreadsheet"
path = "model.xlsx"
cells = [
  { ref = "Inputs!B2", min = 5, max = 60, step = 0.5 },
  { ref = "Inputs!B3", min = 0, max = 0.05, step = 0.001 },
  { ref = "Inputs!B4", min = 0, max = 2000, step = 10 },
]

[metric]
kind = "cell"
ref = "Summary!B1"
goal = "maximize"

[[guards]]
kind = "cell"
ref = "Summary!B2"
min = 0

[agent]
kind = "search"
"""


def build(folder: Path, formulas: int) -> Path:
    """A recipe folder around a workbook of about this many formulas."""
    from openpyxl import Workbook

    rows = formulas // COLUMNS
    wb = Workbook()
    wb.remove(wb.active)
    inputs = wb.create_sheet("Inputs")
    for row, (label, value) in enumerate([("Price", 20.0), ("Growth", 0.01), ("Fixed cost", 500), ("Start units", 100)], 2):
        inputs[f"A{row}"], inputs[f"B{row}"] = label, value
    data = wb.create_sheet("Data")
    for month in range(1, 13):
        data[f"A{month}"], data[f"B{month}"] = month, 1 + 0.1 * (month % 4 - 1.5)
    ws = wb.create_sheet("Model")
    ws["A1"], ws["B1"], ws["C1"], ws["D1"], ws["E1"], ws["F1"], ws["G1"] = (
        "Month", "Units", "Revenue", "Seasonal", "Profit", "Trailing year", "Loss")
    ws["B2"] = "=Inputs!B5"
    for r in range(2, rows + 2):
        ws[f"A{r}"] = r - 1
        if r > 2:
            ws[f"B{r}"] = f"=B{r - 1}*(1+Inputs!$B$3)"
        ws[f"C{r}"] = f"=B{r}*Inputs!$B$2"
        ws[f"D{r}"] = f"=C{r}*VLOOKUP(MOD(A{r}-1,12)+1,Data!$A$1:$B$12,2,FALSE)"
        ws[f"E{r}"] = f"=D{r}-Inputs!$B$4"
        ws[f"F{r}"] = f"=SUM(E{max(2, r - 11)}:E{r})"
        ws[f"G{r}"] = f"=IF(F{r}<0,1,0)"
    last = rows + 1
    summary = wb.create_sheet("Summary")
    summary["A1"], summary["B1"] = "Total profit", f"=SUM(Model!E2:E{last})"
    summary["A2"], summary["B2"] = "Worst year", f"=MIN(Model!F2:F{last})"
    summary["A3"], summary["B3"] = "Loss months", f"=SUM(Model!G2:G{last})"
    folder.mkdir(parents=True, exist_ok=True)
    wb.save(folder / "model.xlsx")
    (folder / "recipe.toml").write_text(RECIPE.lstrip(), encoding="utf-8")
    return folder


def measure(folder: Path, evaluations: int) -> dict:
    """In this process (a fresh one): set up as a run does, then evaluate distinct candidates."""
    import gc
    import resource

    gc.disable()  # as `overnight run` sets up
    from overnight.core import recipe as recipes
    from overnight.core.contracts import MeasureRequest
    from overnight.plugins import workbook as wb

    r = recipes.load(folder)
    surface = r.surface.build(r.dir)
    metric, guard = r.metrics[0].build(r.dir), r.guards[0].build(r.dir)
    started = time.process_time()
    metric.prepare(surface)
    guard.prepare(surface)
    setup = time.process_time() - started
    gc.freeze()
    gc.enable()

    rng = random.Random(7)
    base = surface.read()
    views = [surface.view_from({"Inputs!B2": rng.randrange(10, 121) / 2, "Inputs!B3": rng.randrange(0, 51) / 1000,
                                "Inputs!B4": rng.randrange(0, 201) * 10}, base) for _ in range(evaluations + 1)]
    copies, measures = [], []
    with tempfile.TemporaryDirectory(prefix="overnight-bench-") as work:
        for i, view in enumerate(views):
            folder = Path(work) / str(i)
            folder.mkdir()
            started = time.process_time()
            artifact = surface.materialize(view, folder)
            copied = time.process_time()
            request = MeasureRequest(60, view=view)
            metric.measure(artifact, folder, request)
            guard.measure(artifact, folder, request)
            copies.append(copied - started)
            measures.append(time.process_time() - copied)
    return {
        "formulas": wb.Patcher(surface.source()).formulas(),
        "setup": setup,
        "first_copy": copies[0],  # the surface loads the whole workbook into the engine here, once
        "copy": sum(copies[1:]) / evaluations,
        "measure": sum(measures[1:]) / evaluations,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,6000", help="formulas per workbook, comma-separated")
    parser.add_argument("--evaluations", type=int, default=3, help="candidates timed per size (after a first one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a recipe folder, measured in this process
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child), args.evaluations)))
        return

    print(f"{'formulas':>8}  {'peak RSS':>9}  {'setup':>7}  {'1st copy':>8}  {'copy':>6}  {'metric':>6}  {'s/eval':>6}")
    with tempfile.TemporaryDirectory(prefix="overnight-scale-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            folder = build(Path(tmp) / str(size), size)
            done = subprocess.run([sys.executable, __file__, "--child", str(folder), "--evaluations", str(args.evaluations)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{size:>8}  failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            f = json.loads(done.stdout)
            print(f"{f['formulas']:>8}  {f['peak_mb']:>6.0f} MB  {f['setup']:>6.1f}s  {f['first_copy']:>7.1f}s  "
                  f"{f['copy']:>5.2f}s  {f['measure']:>5.2f}s  {f['copy'] + f['measure']:>5.2f}s", flush=True)
    print("setup: the metric and the guard compiled (CPU); 1st copy: the first candidate's copy, which loads the whole")
    print("workbook into the engine when it has at most spreadsheet.MOST_FORMULAS formulas; copy, metric: each later")
    print("candidate's copy and its metric and guard (one shared evaluation); s/eval: the two together.")


if __name__ == "__main__":
    main()
