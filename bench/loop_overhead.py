"""What the loop itself costs per experiment: an instant in-process metric, the scripted agent,
a real store; with an empty store and with 10,000 experiments already in it.

Run: python bench/loop_overhead.py [EXPERIMENTS] [PREFILL]. Prints figures; asserts nothing.
Target: at most 1 ms per experiment with 10,000 stored. `--profile` prints where the time goes.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from overnight.core import executor
from overnight.core.contracts import Measurement, Metric
from overnight.core.events import EXPERIMENT_FINISHED
from overnight.core.hookspecs import hookimpl
from overnight.core.plugins import Registry
from overnight.core.recipe import load
from overnight.core.runner import build, run
from overnight.core.store import Store


class InstantMetric(Metric):
    """The length of the file, measured in-process: the metric costs next to nothing (and says
    so: `instant`, so the loop calls it without a thread hop)."""

    name = "instant"
    summary = "The length of the file (in-process, instant)."
    options = {}
    reads = "file"
    instant = True

    def measure(self, artifact, folder, request):
        return Measurement(float(len(Path(artifact).read_text())))


@hookimpl
def overnight_register_metrics(register):
    register(InstantMetric)


RECIPE = """
[recipe]
name = "bench"

[surface]
kind = "text"
path = "doc.txt"

[metric]
kind = "instant"

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
experiments = {n}
patience = {n}
"""


def prefill(db: Path, n: int) -> None:
    """An earlier run of the same recipe with `n` experiments, inserted in bulk."""
    Store(db).close()
    conn = sqlite3.connect(db)
    with conn:
        run_id = conn.execute("insert into runs (recipe, status, stop_reason, experiments, started_at) "
                              "values ('bench', 'finished', 'done', ?, ?)", [n, time.time()]).lastrowid
        conn.executemany("insert into candidates (digest, view) values (?, ?)",
                         ((f"prefill-{i:08d}", f"view {i}\n" * 3) for i in range(n)))
        conn.executemany(
            "insert into experiments (run_id, seq, candidate, status, reason, score, rationale, diff, trace, meta, "
            "started_at, seconds) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((run_id, i, f"prefill-{i:08d}", "discard" if i % 3 else "keep", "worse than the best", float(i),
              f"idea {i}", "--- a\n+++ b\n", "some trace\n" * 5, json.dumps({"line": i}), time.time(), 0.001)
             for i in range(n)))
    conn.close()


def measure(n: int, stored: int, profile: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds per experiment in the steady state (from the first experiment to the last).

    CPU time (all threads of this process) is the steadier figure on a busy machine."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "recipe"
        folder.mkdir()
        (folder / "recipe.toml").write_text(RECIPE.format(n=n))
        (folder / "doc.txt").write_text("x\n")
        # Views that keep getting longer, so every one is a keep (the costliest path: a new best).
        (folder / "proposals.jsonl").write_text("".join(
            json.dumps({"view": "x" * (i + 2) + "\n", "rationale": f"longer by {i}"}) + "\n" for i in range(n)))
        # A recipe written an hour ago, as a person's is: files written in the last seconds are
        # read whole on each check of the recipe folder (their time stamp cannot be trusted yet).
        hour_ago = time.time() - 3600
        for file in folder.iterdir():
            os.utime(file, (hour_ago, hour_ago))
        db = root / "overnight.db"
        if stored:
            prefill(db, stored)
        registry = Registry().load(modules=["__main__"])
        store = Store(db)
        setup = build(load(folder, registry), store)
        stamps: list[tuple[float, float]] = []
        setup.events.subscribe(lambda e: stamps.append((time.perf_counter(), time.process_time()))
                               if e.kind == EXPERIMENT_FINISHED else None)
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        summary = run(setup)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        store.close()
        assert summary.experiments == n, summary
        wall = (stamps[-1][0] - stamps[0][0]) / (len(stamps) - 1)
        cpu = (stamps[-1][1] - stamps[0][1]) / (len(stamps) - 1)
        return wall, cpu


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 500
    stored = int(args[1]) if len(args) > 1 else 10_000
    profile = "--profile" in sys.argv
    repeats = 1 if profile else 3
    # Each experiment gets a work folder (a copy of the recipe folder): on a slow disk, creating
    # and removing it costs more than the loop itself, so the figures are also given with the
    # recipe, the store and the work folders in memory (/dev/shm).
    places = [tempfile.gettempdir()] + (["/dev/shm"] if Path("/dev/shm").is_dir() else [])
    for place in places:
        tempfile.tempdir = place
        executor._root = None  # the next work folder root goes there
        for prefilled in (0, stored):
            figures = sorted(measure(n, prefilled, profile=profile) for _ in range(repeats))
            wall, cpu = figures[len(figures) // 2]
            print(f"in {place:<9} {n} experiments, {prefilled:>6} already stored: {wall * 1000:.2f} ms per experiment "
                  f"({1 / wall:.0f} experiments per second), {cpu * 1000:.2f} ms of CPU per experiment "
                  f"(median of {repeats})")
    print("target: at most 1 ms per experiment with 10,000 stored")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
