"""Measurements on Ray: throughput with many in flight, the cost of one trip, and the same
decisions as on this machine.

A local Ray declaring 16 logical CPUs (the metric sleeps, so this small machine can hold
16 at once): 32 experiments of a 1 s metric at parallel 16 against parallel 1 (target: at
least 12x); the overhead of one measurement on Ray against one on this machine for a 10 ms
metric; and one recipe run here and on Ray, whose statuses and scores must match.

Run: python bench/ray_executor.py. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray

from overnight.core.contracts import MeasureRequest
from overnight.core.events import EXPERIMENT_FINISHED, EXPERIMENT_STARTED
from overnight.core.executor import LocalExecutor
from overnight.core.recipe import load
from overnight.core.runner import build, start_run
from overnight.core.store import Store

EXPERIMENTS = 32


def recipe(folder: Path, seconds: float, executor: str, budget: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doc.txt").write_text("hello\n")
    (folder / "score.sh").write_text(f"sleep {seconds}\nwc -c < \"$1\"\n")
    lines = [json.dumps({"view": "x" * (i * 7 % 37 + 1) + "\n", "rationale": f"try {i}"}) for i in range(1, EXPERIMENTS + 1)]
    (folder / "proposals.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "recipe.toml").write_text(f"""
[recipe]
name = "bench-{folder.name}"

[surface]
kind = "text"
path = "doc.txt"

[metric]
kind = "command"
run = "sh {{recipe}}/score.sh {{file}}"

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
experiments = {EXPERIMENTS}
{budget}

{executor}
""")
    return folder


def experiments_seconds(folder: Path, db: Path) -> tuple[float, list[tuple]]:
    """Seconds from the first experiment's start to the last one's end, and what was recorded."""
    marks: list[float] = []

    def seen(event):
        if event.kind in (EXPERIMENT_STARTED, EXPERIMENT_FINISHED) and getattr(event, "seq", 0) > 0:
            marks.append(time.monotonic())

    start_run(load(folder / "recipe.toml"), Store(db), subscribers=[seen])
    import sqlite3

    with sqlite3.connect(db) as con:
        rows = con.execute("select seq, status, score from experiments order by seq").fetchall()
    return marks[-1] - marks[0], rows


def overhead(folder: Path, n: int = 40) -> tuple[float, float]:
    """Mean seconds of one measurement of a 10 ms metric, here and on Ray."""
    setup = build(load(folder / "recipe.toml"), Store(folder.parent / "overhead.db"), with_agent=False)
    local = LocalExecutor(setup.surface, setup.objective)
    request = MeasureRequest(30.0)
    means = []
    for executor in (local, setup.executor, local, setup.executor):
        times = []
        for i in range(n):
            start = time.monotonic()
            m = executor.measure(f"text {i}\n", request).measurement
            times.append(time.monotonic() - start)
            assert m.ok, m.reason
        means.append(statistics.median(times))
    return means[2], means[3]  # the second round: workers started and the recipe unpacked


def ceiling() -> float:
    """What Ray alone gives on this machine: 32 tasks that each run `sleep 1`, 16 at a time."""
    import subprocess

    sleep = ray.remote(lambda: subprocess.run("sleep 1", shell=True).returncode)
    ray.get([sleep.remote() for _ in range(16)])
    start = time.monotonic()
    ray.get([sleep.remote() for _ in range(EXPERIMENTS)])
    return time.monotonic() - start


def main() -> None:
    ray.init(num_cpus=16, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_section = '[executor]\nkind = "ray"\nnum_cpus = 1'
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        slow = recipe(root / "slow", 1, ray_section, "parallel = 16")
        experiments_seconds(slow, root / "warm.db")  # starts 16 workers, unpacks the recipe in each
        wide, _ = experiments_seconds(slow, root / "wide.db")
        text = (slow / "recipe.toml").read_text().replace("parallel = 16", "parallel = 1")
        (slow / "recipe.toml").write_text(text)
        narrow, _ = experiments_seconds(slow, root / "narrow.db")
        print(f"{EXPERIMENTS} experiments of a 1 s metric on a local Ray of 16 logical CPUs:")
        print(f"  parallel 1:  {narrow:6.1f} s  ({EXPERIMENTS / narrow:5.2f} experiments/s)")
        print(f"  parallel 16: {wide:6.1f} s  ({EXPERIMENTS / wide:5.2f} experiments/s)")
        print(f"  throughput: {narrow / wide:.1f}x (target: at least 12x)")
        here = recipe(root / "here", 1, "", "parallel = 16")
        local_wide, _ = experiments_seconds(here, root / "here.db")
        print(f"  parallel 16 on this machine (no Ray): {local_wide:.1f} s: what the loop and the commands cost here")
        bare = ceiling()
        print(f"  Ray alone, the same 32 sleeps 16 at a time: {bare:.1f} s ({EXPERIMENTS / bare:.2f}/s; ideal 2 s): "
              f"the ceiling on this machine now")

        quick = recipe(root / "quick", 0.01, ray_section)
        here, there = overhead(quick)
        print(f"one measurement of a 10 ms metric (median of 40, warm): here {here * 1000:.1f} ms, "
              f"on Ray {there * 1000:.1f} ms: {1000 * (there - here):+.1f} ms per measurement")

        same_here = recipe(root / "same-here", 0.01, "")
        same_there = recipe(root / "same-there", 0.01, ray_section)
        _, local_rows = experiments_seconds(same_here, root / "same-here.db")
        _, ray_rows = experiments_seconds(same_there, root / "same-there.db")
        same = local_rows == ray_rows
        statuses = {s: sum(1 for _, st, _ in local_rows if st == s) for _, s, _ in local_rows}
        print(f"the same recipe (scripted agent, {EXPERIMENTS} experiments) here and on Ray: "
              f"{'the same' if same else 'DIFFERENT'} statuses and scores ({statuses})")
        if not same:
            for a, b in zip(local_rows, ray_rows):
                if a != b:
                    print(f"  here {a}  on Ray {b}")
    ray.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
