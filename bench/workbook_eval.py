"""What one evaluation of the `pricing` recipe's workbook costs: its metric and its guard.

Run: python bench/workbook_eval.py [N]. Prints figures and asserts nothing.

Before: the metric (Model!B12) and the guard (Model!B14) each compiled their own
formula model, so every candidate was evaluated twice. After: the metric and every
guard of kind `cell` on one surface share one compiled model, and one evaluation
returns every cell they read. Both are timed here on the same N candidates (distinct
points of the recipe's grid, so no evaluation is a repeat), alternating, median of
seven rounds of CPU time.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 7
sys.path.insert(0, str(ROOT))


def main(n: int = 40) -> None:
    from overnight.core import recipe as recipes
    from overnight.core.contracts import MeasureRequest
    from overnight.plugins import workbook as wb
    from overnight.plugins.engine import Model

    r = recipes.load(ROOT / "recipes" / "pricing")
    surface = r.surface.build(r.dir)
    metric, guard = r.metrics[0].build(r.dir), r.guards[0].build(r.dir)
    metric.prepare(surface)
    guard.prepare(surface)
    assert metric.model is guard.model

    # The old way, rebuilt faithfully: one model per cell, each evaluated on its own.
    inputs = metric.inputs
    start = {wb.parse_ref(k): v for k, v in surface.values_of(surface.read()).items()}
    started = time.perf_counter()
    separate = []
    for ref in (metric.ref, guard.ref):
        model = Model(surface.source(), inputs)
        model.add(ref, start)
        separate.append(model)
    compiled_separately = time.perf_counter() - started
    started = time.perf_counter()
    shared = Model(surface.source(), inputs)
    for ref in (metric.ref, guard.ref):
        shared.add(ref, start)
    compiled_together = time.perf_counter() - started

    rng = random.Random(7)
    points = [{"Inputs!B2": rng.randrange(10, 121) / 2, "Inputs!B3": rng.randrange(0, 41) / 100,
               "Inputs!B4": rng.randrange(0, 201) * 100} for _ in range(n)]
    views = [surface.view_from(p, surface.read()) for p in points]

    def before(view: str) -> None:
        values = {line.ref: line.value for line in wb.parse(view)[0]}
        for model in separate:
            model.cache.clear()
            model.calculate(values)

    def after(view: str) -> None:
        metric.model.cache.clear()
        request = MeasureRequest(10, view=view)
        metric.measure(r.dir, r.dir, request)
        guard.measure(r.dir, r.dir, request)

    # CPU time of this process: on a shared machine, wall time mostly measures the neighbours.
    rounds = {"before": [], "after": []}
    for _ in range(ROUNDS):
        for name, evaluate in (("before", before), ("after", after)):
            t = time.process_time()
            for view in views:
                evaluate(view)
            rounds[name].append((time.process_time() - t) / len(views) * 1000)

    print(f"pricing: metric {metric.ref} + guard {guard.ref}, {n} candidates, median of {ROUNDS} rounds (CPU time)")
    print(f"  before (a model per cell):       {statistics.median(rounds['before']):6.1f} ms per evaluation"
          f"   (compiled in {compiled_separately:.2f} s)")
    print(f"  after  (one model, every cell):  {statistics.median(rounds['after']):6.1f} ms per evaluation"
          f"   (compiled in {compiled_together:.2f} s)")
    print(f"  rounds before: {', '.join(f'{x:.1f}' for x in rounds['before'])}")
    print(f"  rounds after:  {', '.join(f'{x:.1f}' for x in rounds['after'])}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
