"""How long `overnight --help` takes, and whether it pulled in anything heavy; and how long
`overnight run RECIPE --yes` takes to its first measurement and from its last to the exit.

Run: python bench/startup.py [RUNS]. Prints figures; asserts nothing. Targets: --help at most
0.15 s median; a run's first measurement at most 0.15 s after it was started (issue 13).
The commands may write Python's bytecode caches, as an installed package has them
(PYTHONDONTWRITEBYTECODE, if set here, would have every run compile overnight anew).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
HEAVY = ("litellm", "optuna", "formulas", "openpyxl", "textual", "jinja2", "sqlite_utils", "pluggy", "tomlkit")

PROBE = """
import sys
sys.argv = ["overnight", "--help"]
from overnight.cli.main import main
try:
    main()
except SystemExit:
    pass
heavy = %r
print("@@", sorted(m for m in heavy if m in sys.modules))
"""


def console_script() -> list[str]:
    # The script beside this interpreter, not a shim in front of it (pyenv's costs ~0.1 s of bash).
    beside = Path(sys.executable).parent / "overnight"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("overnight")
    return [found] if found else [sys.executable, "-m", "overnight.cli.main"]


def median_seconds(command: list[str], runs: int) -> tuple[float, float, float]:
    """Median and best wall time, and median CPU time (user + system: steadier on a busy machine)."""
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), min(times), statistics.median(cpu)


def run_ends(command: list[str], runs: int) -> tuple[float, float]:
    """Medians of a run's start to its first measurement and its last measurement to its exit, by
    the metric's own clock (bench/wall_ratio.py's recipe), in a workspace whose store exists."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from wall_ratio import make, own_clock

    firsts, lasts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**ENV, "OVERNIGHT_DB": str(root / ".overnight" / "overnight.db")}
        for i in range(runs + 1):  # the first writes the store: a person's workspace has one
            folder = make(root, 3, f"r{i}")
            began = time.time()
            subprocess.run(command + ["run", str(folder), "--yes"], cwd=root, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, check=True)
            ended = time.time()
            spans = own_clock(root / f"r{i}.log")
            if i:
                firsts.append(spans[0][0] - began)
                lasts.append(ended - spans[-1][1])
    return statistics.median(firsts), statistics.median(lasts)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    command = console_script()
    subprocess.run(command + ["--help"], stdout=subprocess.DEVNULL, check=True, env=ENV)  # warm the disk cache
    median, best, cpu = median_seconds(command + ["--help"], runs)
    bare, bare_best, bare_cpu = median_seconds([sys.executable, "-c", "pass"], runs)
    print(f"overnight --help: median {median:.3f} s, best {best:.3f} s, CPU {cpu:.3f} s over {runs} runs ({' '.join(command)})")
    print(f"python -c pass:   median {bare:.3f} s, best {bare_best:.3f} s, CPU {bare_cpu:.3f} s (the interpreter alone)")
    print(f"overnight's own share: {median - bare:.3f} s wall, {cpu - bare_cpu:.3f} s CPU; target: median at most 0.150 s")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    first, last = run_ends(command, runs)
    print(f"overnight run RECIPE --yes: {first * 1000:.0f} ms to its first measurement, {last * 1000:.0f} ms from its "
          f"last to the exit (medians over {runs} runs: bench/wall_ratio.py's recipe, 3 experiments); target: at most 150 ms")
    out = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, check=True).stdout
    imported = eval(out.split("@@", 1)[1])
    print(f"heavy modules imported by --help: {', '.join(imported) if imported else 'none'} "
          f"(checked: {', '.join(HEAVY)})")
    slowest = subprocess.run([sys.executable, "-X", "importtime", "-c", "import overnight.cli.main"],
                             capture_output=True, text=True).stderr.splitlines()
    rows = []
    for line in slowest:
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit():
                rows.append((int(cumulative), name.rstrip()))
    print("slowest imports of overnight.cli.main (cumulative):")
    for micros, name in sorted(rows, reverse=True)[:5]:
        print(f"  {micros / 1000:7.1f} ms {name.strip()}")


if __name__ == "__main__":
    main()
