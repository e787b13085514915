"""Wall time of a whole `overnight run` against the time its metric takes: a command metric of
about 50 ms, the scripted agent, 100 experiments, parallel 1, start-up included.

Run: python bench/wall_ratio.py [EXPERIMENTS] [RUNS] [--overnight=PATH]. Prints figures; asserts nothing.
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
    """`--overnight=PATH` times another installation (another branch's, say); else this venv's."""
    chosen = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--overnight=")]
    beside = Path(sys.executable).parent / "overnight"  # the venv's script, not a shim in front of it
    return chosen[0] if chosen else str(beside) if beside.exists() else "overnight"


def make(root: Path, n: int, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "recipe.toml").write_text(RECIPE.format(n=n, log=root / f"{name}.log"))
    (folder / "doc.txt").write_text("x" * 40 + "\n")
    # Longer views are keeps, shorter ones discards: about one keep in three, as in a real run.
    lines = [{"view": "x" * (41 + i) + "\n" if i % 3 == 0 else f"{'y' * 20} {i}\n", "rationale": f"idea {i}"}
             for i in range(n)]
    (folder / "proposals.jsonl").write_text("".join(json.dumps(p) + "\n" for p in lines))
    hour_ago = time.time() - 3600  # a recipe written earlier, as a person's is
    for file in folder.iterdir():
        os.utime(file, (hour_ago, hour_ago))
    return folder


def own_clock(log: Path) -> list[tuple[float, float]]:
    """Each measurement's start and end by the metric's own clock (epoch seconds), in order."""
    stamps = [int(line) / 1e9 for line in log.read_text().split()]
    return list(zip(stamps[::2], stamps[1::2]))


def stored(db: Path) -> tuple[list[float], dict]:
    """The seconds of each experiment of the latest run (0 for one not measured), and its statuses."""
    conn = sqlite3.connect(db)
    run = conn.execute("select max(id) from runs").fetchone()[0]
    seconds = [s or 0.0 for (s,) in conn.execute("select seconds from experiments where run_id = ? order by seq", [run])]
    statuses = dict(conn.execute("select status, count(*) from experiments where run_id = ? group by status", [run]).fetchall())
    conn.close()
    return seconds, statuses


def once(root: Path, n: int, name: str) -> dict:
    folder = make(root, n, name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # an install keeps its bytecode
    env["OVERNIGHT_DB"] = str(root / ".overnight" / "overnight.db")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.time()
    start = time.perf_counter()
    done = subprocess.run([overnight(), "run", str(folder), "--yes"], cwd=root, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.perf_counter() - start
    finished = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"overnight run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    spans = own_clock(root / f"{name}.log")
    own = [b - a for a, b in spans]
    gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
    recorded, statuses = stored(root / ".overnight" / "overnight.db")
    measured = [s for s in recorded if s]
    # The measurements the store keeps no seconds for (the end-of-run confirmation) count at
    # their own clock's figure, which is lower than a recorded one: the ratio errs against overnight.
    metric = sum(measured) + sum(own[len(measured):])
    # Overnight's own time between two measurements: from the first measurement's start to the last's
    # end, less the metric time, shared among the gaps (the first start is the metric's own `date`,
    # later than the recorded start: this errs against overnight too).
    between = (spans[-1][1] - spans[0][0] - metric) / max(1, len(spans) - 1)
    return dict(wall=wall, own=sum(own), measurements=len(own), recorded=sum(measured), metric=metric,
                statuses=statuses, cpu=after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
                per=statistics.median(measured) if measured else 0.0, per_own=statistics.median(own),
                startup=spans[0][0] - began, gap=statistics.median(gaps), gaps=sum(gaps), after=finished - spans[-1][1],
                between=between)


def plain_loop(root: Path, times: int) -> tuple[float, float]:
    """The same command run `times` times by a bare Python loop (subprocess.run, a shell each time):
    its wall time, and the median gap between two by the metric's own clock (what spawning costs)."""
    log = root / "plain.log"
    command = RECIPE.split("run = '")[1].split("'\n")[0].replace("{{file}}", str(root / "plain.txt"))
    (root / "plain.txt").write_text("x" * 40 + "\n")
    env = {**os.environ, "METRIC_LOG": str(log)}
    start = time.perf_counter()
    for _ in range(times):
        subprocess.run(command, shell=True, env=env, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    spans = own_clock(log)
    return wall, statistics.median(spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100
    runs = int(args[1]) if len(args) > 1 else 3
    print(f"{overnight()}; load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # A workspace as a person's is after a first run: its store exists and Python's bytecode is written.
        once(root, 3, "warm")
        results = []
        for i in range(runs):
            r = once(root, n, f"wall{i}")
            results.append(r)
            print(f"run {i + 1}: wall {r['wall']:.3f} s, metric {r['metric']:.3f} s over {r['measurements']} measurements "
                  f"-> ratio {r['wall'] / r['metric']:.3f} (overhead {(r['wall'] - r['metric']) * 1000:.0f} ms); "
                  f"by the metric's own clock {r['own']:.3f} s -> {r['wall'] / r['own']:.3f}; "
                  f"one measurement {r['per'] * 1000:.1f} ms as stored, {r['per_own'] * 1000:.1f} ms by its own clock; "
                  f"CPU {r['cpu']:.2f} s; {r['statuses']}")
            print(f"       by the metric's clock: {r['startup'] * 1000:.0f} ms from the start to the first measurement, "
                  f"{r['gap'] * 1000:.1f} ms between two (median; {r['gaps'] * 1000:.0f} ms in all), "
                  f"{r['after'] * 1000:.0f} ms from the last to the exit; "
                  f"{r['between'] * 1000:.2f} ms of overnight's own between two, outside the recorded seconds")
    ratio = statistics.median(r["wall"] / r["metric"] for r in results)
    own = statistics.median(r["wall"] / r["own"] for r in results)
    wall = statistics.median(r["wall"] for r in results)
    startup = statistics.median(r["startup"] for r in results)
    gap = statistics.median(r["gap"] for r in results)
    between = statistics.median(r["between"] for r in results)
    print(f"median over {runs} runs: wall / metric time {ratio:.3f} (by the metric's own clock: {own:.3f}); "
          f"wall {wall:.2f} s, {startup * 1000:.0f} ms to the first measurement, {gap * 1000:.1f} ms between two, "
          f"{between * 1000:.2f} ms of them overnight's own (outside the recorded seconds)")
    plain, plain_gap = plain_loop(Path(tempfile.mkdtemp()), results[0]["measurements"])
    print(f"the same command run {results[0]['measurements']} times by a bare Python loop: {plain:.2f} s "
          f"({plain_gap * 1000:.1f} ms between two by its clock); overnight's wall / that: {wall / plain:.3f}")
    print("target: at most 1.05")
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
