"""How close the search agent gets to a known optimum, and whether TPE beats random search.

For four workbooks whose best inputs are known (the bundled pricing model, and three
synthetic workbooks written here into a temporary folder), each sampler runs 100
experiments with 5 seeds through the real loop (core.runner, a real store, the cell
metric on the formulas engine). Printed: the best value after 25, 50 and 100
measurements (the median over the seeds), its distance to the optimum, how many
experiments it took to measure the optimum itself, and the time per experiment (wall,
and the agent's own share: propose + observe).

`edge` is the hidden-style case: a single whole-number cell with 100 values and a
guard that fails just past the optimum (the best allowed value sits next to the edge).

    python bench/search_quality.py [--seeds 5] [--experiments 100] [--jobs 2] [--only edge]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CHECKPOINTS = (25, 50, 100)
SAMPLERS = ("tpe", "random")

# -- the workbooks -----------------------------------------------------------------------

VALLEY_RECIPE = """
[recipe]
name = "valley"

[surface]
kind = "spreadsheet"
path = "valley.xlsx"
cells = [
  { ref = "Inputs!B1", min = -2, max = 2 },
  { ref = "Inputs!B2", min = -1, max = 3 },
]

[metric]
kind = "cell"
ref = "Model!B1"
goal = "maximize"

[agent]
kind = "search"

[budget]
experiments = 100
"""

PLANS_RECIPE = """
[recipe]
name = "plans"

[surface]
kind = "spreadsheet"
path = "plans.xlsx"
cells = [
  { ref = "Inputs!B1", choices = ["basic", "pro", "team"] },
  { ref = "Inputs!B2", min = 1, max = 40, integer = true },
  { ref = "Inputs!B3", min = 1, max = 100, step = 1 },
]

[metric]
kind = "cell"
ref = "Model!B4"
goal = "maximize"

[agent]
kind = "search"

[budget]
experiments = 100
"""

EDGE_RECIPE = """
[recipe]
name = "edge"

[surface]
kind = "spreadsheet"
path = "edge.xlsx"
cells = [
  { ref = "Inputs!B1", min = 1, max = 100, integer = true },
]

[metric]
kind = "cell"
ref = "Model!B1"
goal = "maximize"

[[guards]]
kind = "cell"
ref = "Model!B2"
min = 0

[agent]
kind = "search"

[budget]
experiments = 100
"""
EDGE = 73  # the most units the store room holds; profit still rises past it

# Plans: (name, value multiplier, cost per unit). Profit = seats x m x (price - c) x exp(-price/25) x 10
# - 2 x seats^2, so for each plan the best price is c + 25, and the best seats follow from it.
PLANS = [("basic", 1.0, 5), ("pro", 1.6, 12), ("team", 2.2, 22)]


def write_valley(folder: Path) -> None:
    """The Rosenbrock valley, negated: the best value is 0, at x = 1, y = 1."""
    from openpyxl import Workbook

    folder.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "Inputs"
    ws["A1"], ws["B1"], ws["A2"], ws["B2"] = "x", -1, "y", 2
    model = wb.create_sheet("Model")
    model["A1"], model["B1"] = "Minus Rosenbrock", "=-((1-Inputs!B1)^2+100*(Inputs!B2-Inputs!B1^2)^2)"
    wb.save(folder / "valley.xlsx")
    (folder / "recipe.toml").write_text(VALLEY_RECIPE.lstrip())


def write_plans(folder: Path) -> None:
    """A choice, a whole number and a price: the best plan is known by trying each."""
    from openpyxl import Workbook

    folder.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "Inputs"
    ws["A1"], ws["B1"], ws["A2"], ws["B2"], ws["A3"], ws["B3"] = "Plan", "basic", "Seats", 5, "Price", 10
    plans = wb.create_sheet("Plans")
    for row, (name, m, c) in enumerate(PLANS, start=1):
        plans.cell(row, 1, name), plans.cell(row, 2, m), plans.cell(row, 3, c)
    model = wb.create_sheet("Model")
    model["A1"], model["B1"] = "Multiplier", "=VLOOKUP(Inputs!B1,Plans!A1:C3,2,FALSE)"
    model["A2"], model["B2"] = "Cost per unit", "=VLOOKUP(Inputs!B1,Plans!A1:C3,3,FALSE)"
    model["A3"], model["B3"] = "Value per seat", "=B1*(Inputs!B3-B2)*EXP(-Inputs!B3/25)*10"
    model["A4"], model["B4"] = "Profit", "=Inputs!B2*B3-2*Inputs!B2^2"
    wb.save(folder / "plans.xlsx")
    (folder / "recipe.toml").write_text(PLANS_RECIPE.lstrip())


def write_edge(folder: Path) -> None:
    """Units to order: profit rises up to 120 units, but the store room holds 73, so the best
    allowed is 73, and 74 already breaks the guard."""
    from openpyxl import Workbook

    folder.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "Inputs"
    ws["A1"], ws["B1"] = "Units", 20
    model = wb.create_sheet("Model")
    model["A1"], model["B1"] = "Profit", "=Inputs!B1*(12-0.05*Inputs!B1)-40"
    model["A2"], model["B2"] = "Room left", f"={EDGE * 10}-10*Inputs!B1"
    wb.save(folder / "edge.xlsx")
    (folder / "recipe.toml").write_text(EDGE_RECIPE.lstrip())


def write_pricing(folder: Path) -> None:
    from overnight.recipes import folder as bundled

    shutil.copytree(bundled("pricing"), folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


WORKBOOKS = {"pricing": write_pricing, "valley": write_valley, "plans": write_plans, "edge": write_edge}


# -- the known optima, evaluated with the same engine ------------------------------------------


def optimum(name: str, folder: Path) -> tuple[float, str]:
    """The best value and where it is: analytic, then checked on the grid with the formulas engine."""
    if name == "valley":
        return _evaluate(folder, [{"Inputs!B1": 1, "Inputs!B2": 1}])
    if name == "plans":
        points = []
        for plan, m, c in PLANS:
            for seats in range(1, 41):
                points += [{"Inputs!B1": plan, "Inputs!B2": seats, "Inputs!B3": c + 25 + d} for d in (-1, 0, 1)]
        return _evaluate(folder, points)
    if name == "edge":
        return _evaluate(folder, [{"Inputs!B1": x} for x in range(1, 101)], guard="Model!B2")
    # pricing: effective price 19 (cost 4 + price scale 15), discount 20%, ad spend near 7,286;
    # the grid points around it (README.md of the recipe).
    points = [{"Inputs!B2": p / 2, "Inputs!B3": d / 100, "Inputs!B4": a}
              for p in range(45, 51) for d in range(18, 23) for a in range(7000, 7700, 100)]
    return _evaluate(folder, points, guard="Model!B14")


def _evaluate(folder: Path, points: list[dict], guard: str | None = None) -> tuple[float, str]:
    from overnight.core import recipe as recipes
    from overnight.core.contracts import MeasureRequest
    from overnight.plugins.cell import CellMetric

    r = recipes.load(folder)
    surface = r.surface.build(r.dir)
    metric = r.metrics[0].build(r.dir)
    metric.prepare(surface)
    check = None
    if guard:
        check = CellMetric({"ref": guard}, r.dir)
        check.prepare(surface)
    base = surface.read()
    best = None
    for point in points:
        view = surface.view_from(point, base)
        request = MeasureRequest(10, view=view)
        value = metric.measure(folder, folder, request).value
        if check is not None and check.measure(folder, folder, request).value < 0:
            continue
        if best is None or value > best[0]:
            best = (value + 0.0, ", ".join(f"{k}={v}" for k, v in surface.values_of(view).items()))
    return best


# -- one search run ------------------------------------------------------------------------------


def search(job: tuple[str, str, int, int, str]) -> dict:
    """The best score after each experiment of one run (the baseline counts as the start),
    and the time per experiment: wall, and the agent's own (propose + observe)."""
    name, sampler, seed, experiments, root = job
    import tomlkit

    from overnight.core import recipe as recipes
    from overnight.core.runner import build, run
    from overnight.core.store import Store

    folder = Path(root) / f"{name}-{sampler}-{seed}"
    WORKBOOKS[name](folder)
    doc = tomlkit.parse((folder / "recipe.toml").read_text())
    agent = tomlkit.table()
    agent["kind"], agent["sampler"], agent["seed"] = "search", sampler, seed
    doc["agent"] = agent
    doc["budget"]["experiments"] = experiments
    (folder / "recipe.toml").write_text(tomlkit.dumps(doc))
    store = Store(folder / "store.db")
    setup = build(recipes.load(folder), store)
    agent_seconds = [0.0]
    for method in ("propose", "observe"):
        setup.agent.__dict__[method] = _timed(getattr(setup.agent, method), agent_seconds)
    begin = time.perf_counter()
    summary = run(setup)
    wall = time.perf_counter() - begin
    best, curve = None, []
    for e in store.experiments(summary.run_id):
        if e["status"] in ("baseline", "keep"):
            best = e["score"] if best is None else max(best, e["score"])
        if e["seq"] > 0:
            curve.append(best)
    done = max(1, len(curve))
    curve += [best] * (experiments - len(curve))  # a run that stopped early keeps its best
    return {"curve": curve, "ms": wall / done * 1000, "agent_ms": agent_seconds[0] / done * 1000}


def _timed(method, total: list[float]):
    def timed(*args, **kwargs):
        begin = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - begin
    return timed


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--experiments", type=int, default=max(CHECKPOINTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=list(WORKBOOKS), action="append")
    args = parser.parse_args(argv)
    names = args.only or list(WORKBOOKS)
    checkpoints = [n for n in CHECKPOINTS if n <= args.experiments]
    root = Path(tempfile.mkdtemp(prefix="overnight-bench-"))
    started = time.monotonic()
    try:
        optima = {}
        for name in names:
            folder = root / f"{name}-optimum"
            WORKBOOKS[name](folder)
            optima[name] = optimum(name, folder)
        jobs = [(n, s, seed, args.experiments, str(root)) for n in names for s in SAMPLERS for seed in range(args.seeds)]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = dict(zip(jobs, pool.map(search, jobs)))
        curves = {j: r["curve"] for j, r in results.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"Search quality: median of {args.seeds} seeds, best value after N measurements (higher is better)")
    print(f"{'workbook':<9} {'sampler':<7} " + " ".join(f"{'best@' + str(n):>12}" for n in checkpoints)
          + f" {'gap@' + str(checkpoints[-1]):>22}")
    for name in names:
        best, where = optima[name]
        medians = {}
        for sampler in SAMPLERS:
            runs = [curves[j] for j in jobs if j[0] == name and j[1] == sampler]
            medians[sampler] = [statistics.median(c[n - 1] for c in runs) for n in checkpoints]
            print(f"{name:<9} {sampler:<7} " + " ".join(f"{v:>12.4f}" for v in medians[sampler])
                  + f" {_gap(medians[sampler][-1], best):>22}")
        ahead = ["ahead" if t > r else ("tied" if t == r else "behind") for t, r in zip(medians["tpe"], medians["random"])]
        print(f"{'':<9} optimum {best:.4f} at {where}; tpe vs random: " + ", ".join(
            f"@{n} {a}" for n, a in zip(checkpoints, ahead)))
        for sampler in SAMPLERS:
            runs = [results[j] for j in jobs if j[0] == name and j[1] == sampler]
            found = [_found(r["curve"], best) for r in runs]
            shown = ", ".join(str(f) if f else "never" for f in found)
            print(f"{'':<9} {sampler:<7} optimum measured after {shown} experiments; "
                  f"{statistics.median(r['ms'] for r in runs):.1f} ms/exp wall, "
                  f"{statistics.median(r['agent_ms'] for r in runs):.2f} ms/exp in the agent (medians)")
    print(f"({len(jobs)} runs, {time.monotonic() - started:.0f} s)")


def _found(curve: list[float], best: float) -> int | None:
    """The experiment that first reached the optimum (1-based), or None."""
    return next((i + 1 for i, v in enumerate(curve) if v is not None and v >= best - 1e-9 * max(1.0, abs(best))), None)


def _gap(value: float, best: float) -> str:
    """How far below the optimum: in its units, and in % of its size when that means something."""
    if not math.isfinite(value):
        return "-"
    gap = best - value
    return f"{gap:.4f} ({gap / abs(best) * 100:.2f}%)" if best else f"{gap:.4f}"


if __name__ == "__main__":
    main(sys.argv[1:])
