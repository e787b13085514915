"""Wall time of a whole `overnight run` against the time its metric takes: a command metric of
about 50 ms, the scripted agent, 100 experiments, parallel 1, start-up included.

Run: python bench/wall_ratio.py [EXPERIMENTS] [RUNS]. Prints figures; asserts nothing.
Target: wall / metric time at most 1.05.

`overnight run RECIPE --yes` is started as a person starts it, in a fresh process, and timed
from before it starts to after it exits. Metric time is given two honest ways:
  - by the metric's own clock: the command writes the time it starts and the time it ends
    (`date +%s%N`, part of the metric) to a log outside the recipe folder; every measurement
    counts, the end-of-run confirmation included;
  - as the store records it: the sum of the `seconds` of the run's experiments (the
    measurements the experiments were decided on: spawn to exit of the command).
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = """
[recipe]
name = "wall"

[surface]
kind = "text"
path = "doc.txt"

[metric]
kind = "command"
run = 'date +%s%N >> "$METRIC_LOG"; sleep 0.05; wc -c < {{file}}; date +%s%N >> "$METRIC_LOG"'
env = {{ METRIC_LOG = "{log}" }}

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
experiments = {n}
patience = {n}
parallel = 1
per_experiment_seconds = 10
"""


def overnight() -> str:
    beside = Path(sys.executable).parent / "overnight"  # the venv's script, not a shim in front of it
    return str(beside) if beside.exists() else "overnight"


def make(root: Path, n: int) -> Path:
    folder = root / "wall"
    folder.mkdir()
    (folder / "recipe.toml").write_text(RECIPE.format(n=n, log=root / "metric.log"))
    (folder / "doc.txt").write_text("x" * 40 + "\n")
    # Longer views are keeps, shorter ones discards: about one keep in three, as in a real run.
    lines = [{"view": "x" * (41 + i) + "\n" if i % 3 == 0 else f"{'y' * 20} {i}\n", "rationale": f"idea {i}"}
             for i in range(n)]
    (folder / "proposals.jsonl").write_text("".join(json.dumps(p) + "\n" for p in lines))
    hour_ago = time.time() - 3600  # a recipe written earlier, as a person's is
    for file in folder.iterdir():
        os.utime(file, (hour_ago, hour_ago))
    return folder


def own_clock(log: Path) -> tuple[float, int]:
    stamps = [int(line) for line in log.read_text().split()]
    pairs = list(zip(stamps[::2], stamps[1::2]))
    return sum(b - a for a, b in pairs) / 1e9, len(pairs)


def stored(db: Path) -> tuple[float, int, dict]:
    conn = sqlite3.connect(db)
    seconds, count = conn.execute("select sum(seconds), count(*) from experiments").fetchone()
    statuses = dict(conn.execute("select status, count(*) from experiments group by status").fetchall())
    conn.close()
    return seconds or 0.0, count, statuses


def once(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = make(root, n)
        db = root / "overnight.db"
        env = {**os.environ, "OVERNIGHT_DB": str(db)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([overnight(), "run", str(folder), "--yes"], cwd=root, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit(f"overnight run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        metric, measured = own_clock(root / "metric.log")
        recorded, experiments, statuses = stored(db)
        return dict(wall=wall, metric=metric, measured=measured, recorded=recorded, experiments=experiments,
                    statuses=statuses, cpu=after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100
    runs = int(args[1]) if len(args) > 1 else 3
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    results = []
    for i in range(runs):
        r = once(n)
        results.append(r)
        print(f"run {i + 1}: wall {r['wall']:.3f} s; metric by its own clock {r['metric']:.3f} s over {r['measured']} "
              f"measurements -> ratio {r['wall'] / r['metric']:.3f}; as the store records it {r['recorded']:.3f} s over "
              f"{r['experiments']} experiments -> ratio {r['wall'] / r['recorded']:.3f}; overhead "
              f"{(r['wall'] - r['metric']) * 1000:.0f} ms; CPU of everything started {r['cpu']:.2f} s; {r['statuses']}")
    ratio = statistics.median(r["wall"] / r["metric"] for r in results)
    store_ratio = statistics.median(r["wall"] / r["recorded"] for r in results)
    print(f"median over {runs} runs: wall / metric time {ratio:.3f} (metric's own clock), {store_ratio:.3f} (as stored)")
    print("target: at most 1.05")
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
