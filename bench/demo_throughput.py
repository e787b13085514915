"""Experiments per second on the demo, and where the wall time goes.

Runs the bundled pricing recipe (the one `overnight demo` runs) through the real loop,
with a real store, and times every part of an experiment: the metric (the formula
engine recalculating the target and the guard), the agent (Optuna asking and being
told), the surface writing the candidate workbook, the work folder, the store. The
goal is a loop that is not the bottleneck: most of the wall time inside the metric.

    python bench/demo_throughput.py [--repeats 3] [--experiments N]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def timed(acc: collections.Counter, key: str, func):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            acc[key] += time.perf_counter() - start

    return wrapper


def one_run(root: Path, experiments: int | None) -> dict:
    import tomlkit

    from overnight.core import executor, recipe as recipes
    from overnight.core.runner import build, run
    from overnight.core.store import Store
    from overnight.recipes import folder as bundled

    folder = root / f"demo-{time.monotonic_ns()}"
    shutil.copytree(bundled("pricing"), folder, ignore=shutil.ignore_patterns("__pycache__"))
    if experiments:
        doc = tomlkit.parse((folder / "recipe.toml").read_text())
        doc["budget"]["experiments"] = experiments
        (folder / "recipe.toml").write_text(tomlkit.dumps(doc))

    acc: collections.Counter = collections.Counter()
    started = time.perf_counter()
    store = Store(folder / "store.db")
    setup = build(recipes.load(folder), store)
    built = time.perf_counter()

    for metric in setup.objective.all_metrics():
        metric.measure = timed(acc, "metric (formula engine)", metric.measure)
    setup.surface.materialize = timed(acc, "surface (write the candidate)", setup.surface.materialize)
    setup.surface.diff = timed(acc, "surface (diff)", setup.surface.diff)
    setup.agent.propose = timed(acc, "agent (Optuna ask)", setup.agent.propose)
    setup.agent.observe = timed(acc, "agent (Optuna tell)", setup.agent.observe)
    for name in ("record_experiment", "update_run", "put_candidate", "control", "notes"):
        setattr(store, name, timed(acc, "store (SQLite)", getattr(store, name)))
    copytree, rmtree = executor.shutil.copytree, executor.shutil.rmtree
    executor.shutil.copytree = timed(acc, "work folder (copy, clean)", copytree)
    executor.shutil.rmtree = timed(acc, "work folder (copy, clean)", rmtree)
    try:
        summary = run(setup)
    finally:
        executor.shutil.copytree, executor.shutil.rmtree = copytree, rmtree
    ended = time.perf_counter()
    return {"build": built - started, "loop": ended - built, "experiments": summary.experiments,
            "best": summary.best, "baseline": summary.baseline, "parts": dict(acc)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--experiments", type=int, default=None, help="override the recipe's budget")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="overnight-throughput-"))
    try:
        runs = [one_run(root, args.experiments) for _ in range(args.repeats)]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    med = statistics.median
    loop = med(r["loop"] for r in runs)
    n = med(r["experiments"] for r in runs)
    parts = {k: med(r["parts"].get(k, 0.0) for r in runs) for k in {k for r in runs for k in r["parts"]}}
    parts["loop itself (asyncio, threads, decisions)"] = max(0.0, loop - sum(parts.values()))
    metric = parts["metric (formula engine)"]
    build = med(r["build"] for r in runs)
    print(f"Demo throughput: the pricing recipe, {n:g} experiments, median of {len(runs)} runs")
    print(f"  setup before the first experiment (imports, compiling the workbook): {build:.2f} s")
    print(f"  the loop: {loop:.2f} s, {n / loop:.1f} experiments/s, {loop / n * 1000:.1f} ms per experiment")
    print(f"  inside the metric: {metric / loop * 100:.1f}% of the loop's wall time "
          f"({(1 - metric / loop) * 100:.1f}% outside it)")
    for key, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"    {key:<44} {seconds:7.2f} s  {seconds / loop * 100:5.1f}%  {seconds / n * 1000:6.1f} ms/experiment")
    whole = build + loop
    print(f"  the whole demo: {whole:.2f} s; the metric's share, counting its compile in setup: "
          f"{(metric + build) / whole * 100:.1f}% at most")
    best = med(r["best"] for r in runs)
    base = runs[0]["baseline"]
    print(f"  best monthly profit {best:.2f} (baseline {base:.2f}, {(best - base) / abs(base) * 100:+.1f}%)")


if __name__ == "__main__":
    main(sys.argv[1:])
