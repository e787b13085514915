"""A night on a large file: the store's size, the run's time, and the morning's `diff`, `show`
and `explain`, for one-line changes scattered through a text of many megabytes.

Run: python bench/large_surface.py [MEGABYTES] [EXPERIMENTS] [--explain] [--overnight=PATH]. Prints
figures; asserts nothing. Each experiment of the scripted agent fixes one line of the file (a keep), so
the best at the end differs from the baseline in EXPERIMENTS places spread through it. Before
views were kept in parts (core/parts.py), 100 experiments on 28 MB made a 2.8 GB store.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = """
[recipe]
name = "large"

[surface]
kind = "text"
path = "big.txt"

[metric]
kind = "command"
run = "grep -c ' bad$' {{file}} || true"
goal = "minimize"
deterministic = true

[agent]
kind = "scripted"
file = "ideas.jsonl"

[budget]
experiments = {n}
per_experiment_seconds = 120
"""


def overnight() -> str:
    chosen = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--overnight=")]
    beside = Path(sys.executable).parent / "overnight"
    return chosen[0] if chosen else str(beside) if beside.exists() else "overnight"


def make(folder: Path, megabytes: float, n: int) -> None:
    rng = random.Random(1)
    lines, size = [], 0
    while size < megabytes * 1e6:
        line = f"line {len(lines):07d}: the quick brown fox jumps over the lazy dog {rng.random():.6f} ok\n"
        lines.append(line)
        size += len(line)
    bad = sorted(rng.sample(range(len(lines)), n))
    for i in bad:
        lines[i] = lines[i].replace(" ok\n", " bad\n")
    folder.mkdir()
    (folder / "big.txt").write_text("".join(lines))
    (folder / "recipe.toml").write_text(RECIPE.format(n=n))
    ideas = [{"replace": [lines[i], lines[i].replace(" bad\n", " ok\n")], "rationale": f"fix line {i}"} for i in bad]
    (folder / "ideas.jsonl").write_text("".join(json.dumps(x) + "\n" for x in ideas))


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([overnight(), *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        sys.exit(f"overnight {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start, done.stdout


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    megabytes = float(args[0]) if args else 28.0
    n = int(args[1]) if len(args) > 1 else 100
    print(f"{overnight()}; {megabytes:g} MB file, {n} experiments; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make(root / "large", megabytes, n)
        seconds, _ = timed(["run", "large", "--yes", "-q"], root)
        used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run is the first child
        peak, cpu = used.ru_maxrss / 1024, used.ru_utime + used.ru_stime  # cpu: its metric's commands too
        store = root / ".overnight"
        size = sum(f.stat().st_size for f in store.iterdir() if f.name.startswith("overnight.db"))
        print(f"run: {seconds:.1f} s ({seconds / n:.2f} s an experiment; cpu {cpu / n:.2f} s), peak {peak:.0f} MB; "
              f"store {size / 1e6:.1f} MB for {n + 1} views of {megabytes:g} MB")
        for command in (["diff", f"1:{n}"], ["show", f"1:{n}"], ["diff", f"1:{n}", f"1:{n - 1}"]):
            seconds, out = timed(command, root)
            hunks = sum(line.startswith("@@ ") for line in out.splitlines())
            print(f"{' '.join(command)}: {seconds:.2f} s, {hunks} hunks" + (" (no diff: past the limit)" if "(no diff:" in out else ""))
        if "--explain" in sys.argv:
            seconds, _ = timed(["explain", "1", "--yes"], root)
            print(f"explain: {seconds:.1f} s for {n} kept changes")


if __name__ == "__main__":
    main()
