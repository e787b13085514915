"""How the read paths hold up at 10,000 and 100,000 stored experiments: the CLI and the TUI.

Run: python bench/scale.py [--sizes 10000,100000] [--runs 5] [--stores DIR]. Prints a table
with the targets of issue 13 beside each figure; asserts nothing.

Each size is one store holding one run of that many experiments (every status, rationales,
reasons, diffs and traces of realistic length), written with executemany in a few seconds.
`--stores DIR` keeps the stores there and reuses them on the next call (the same files
before and after a change). Every command runs as a person types it, in a fresh process
through the console script; the figure is the median wall time over the runs, with the
median CPU time (user + system, steadier on a busy machine) and the peak memory of the
process (its own, from wait4). The commands may write Python's bytecode caches (an installed
package has them; PYTHONDONTWRITEBYTECODE, if set here, would have every run compile overnight
anew). `export`'s first row is the time until the first data row
reaches the pipe. The TUI opens headless at 80x24 in a fresh interpreter; first paint is
when the dashboard has drawn the run with its table and plot, and the idle poll is what the
dashboard reads twice a second when nothing changed. It starts as `overnight tui` does, with
the process that reads the run's ledger on the other core (tui/prefetch.py): its CPU time
counts in the TUI's, and its peak memory is shown when larger than the TUI's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What the commands run with: this environment, less PYTHONDONTWRITEBYTECODE (see above).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
STATUSES = ["discard"] * 70 + ["keep"] * 5 + ["crash"] * 8 + ["timeout"] * 3 + ["invalid"] * 7 + ["duplicate"] * 5 + ["guard_failed"] * 2
RECIPE = ('[recipe]\nname = "bench"\n[surface]\nkind = "text"\npath = "t.txt"\n[metric]\nkind = "command"\n'
          'run = "wc -c {file}"\n[agent]\nkind = "scripted"\nfile = "p.jsonl"\n')


def fill(db: Path, n: int, goal: str = "minimize") -> int:
    """One finished run of `n` experiments after its baseline; returns the run's id."""
    from overnight.core.contracts import digest
    from overnight.core.store import Store

    store = Store(db)  # the schema, as a run makes it
    run_id = store.start_run(recipe="bench", recipe_path=str(db.parent / "recipe.toml"), recipe_text=RECIPE,
                             recipe_digest=digest(RECIPE), config=json.dumps({"budget": {"experiments": n + 100}}),
                             goal=goal, source_path=str(db.parent / "t.txt"), source_fingerprint="")
    store.close()
    rng = random.Random(7)
    base = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(60))
    best, best_seq, rows, candidates, now = 1000.0, 0, [], [], time.time()
    for seq in range(n + 1):
        status = "baseline" if seq == 0 else rng.choice(STATUSES)
        view = base.replace(f"line {seq % 60}:", f"line {seq % 60} (v{seq}):")
        d = digest(view)
        candidates.append((d, view))
        score = None if status in ("crash", "timeout", "invalid", "duplicate") else best + rng.uniform(-5, 30)
        if status in ("keep", "baseline"):
            score = best - rng.uniform(0.1, 2.0) if seq else best
            best, best_seq = score, seq
        rows.append((run_id, seq, None, d, status, f"worse than the best ({best:.2f}) by {rng.uniform(0, 9):.2f}",
                     score, None if score is None else score - 1000.0,
                     f"try rewording line {seq % 60} so the fox is quicker and the dog less lazy",
                     f"--- a/t.txt\n+++ b/t.txt\n@@ -{seq % 60 + 1} +{seq % 60 + 1} @@\n-line\n+line (v{seq})\n",
                     "measured\n" * 20, now + seq, 0.5, 0.0, 0))
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("insert or ignore into candidates (digest, view) values (?, ?)", candidates)
        conn.executemany("insert into experiments (run_id, seq, parent, candidate, status, reason, score, delta, "
                         "rationale, diff, trace, started_at, seconds, cost_usd, tokens) "
                         "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        ids = dict(conn.execute("select seq, id from experiments where run_id = ? and seq in (0, ?)", [run_id, best_seq]))
        # The run's row names its baseline and best, as a run writes them (core/record.py).
        conn.execute("update runs set status = 'finished', stop_reason = 'the budget of experiments is spent', "
                     "experiments = ?, baseline_experiment = ?, best_experiment = ?, baseline_score = 1000.0, "
                     "best_score = ?, seconds = ?, ended_at = ? where id = ?",
                     [n, ids[0], ids[best_seq], best, n * 0.5, now + n, run_id])
    conn.close()
    return run_id


def store_of(folder: Path, n: int) -> Path:
    db = folder / f"store-{n}.db"
    if not db.exists():
        # In a process of its own: a child started later would count this one's memory as its own.
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--fill", str(n), str(db)], check=True)
        print(f"store of {n:,} experiments written in {time.perf_counter() - t:.1f} s ({db.stat().st_size / 1e6:.0f} MB)",
              file=sys.stderr)
    return db


def overnight() -> list[str]:
    beside = Path(sys.executable).parent / "overnight"
    if beside.exists():
        return [str(beside)]
    return [shutil.which("overnight") or "overnight"]


def once(command: list[str], cwd: Path) -> dict:
    """Runs `command` once, reading its output as it comes: wall, CPU, peak memory, first data row."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd, env=ENV)
    newlines, first_row, size = 0, None, 0
    while chunk := proc.stdout.read1(1 << 16):
        size += len(chunk)
        if first_row is None:
            newlines += chunk.count(b"\n")
            if newlines >= 2:  # the header, then the first row
                first_row = time.perf_counter() - start
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {proc.returncode}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "mb": usage.ru_maxrss / 1024,
            "first": first_row or wall, "bytes": size}


def median(command: list[str], cwd: Path, runs: int) -> dict:
    once(command, cwd)  # warm the disk cache (and bring an older store up to date)
    samples = [once(command, cwd) for _ in range(runs)]
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]} | {"mb": max(s["mb"] for s in samples)}


# Runs in a fresh interpreter: the first paint of the dashboard, then the idle poll; prints JSON.
PROBE = r"""
import gc, json, resource, sys, time
start = time.perf_counter()
from overnight.tui import prefetch
prefetch.start(sys.argv[1])  # as `overnight tui` starts the UI (cli/tui.py)
gc.disable()
from overnight.tui.app import OvernightApp
from overnight.tui.dashboard import Dashboard
from overnight.tui.experiment_table import ExperimentTable
from overnight.tui.score_plot import ScorePlot
gc.freeze()
gc.enable()
db, expected = sys.argv[1], int(sys.argv[2])
figures = {}


class Timed(OvernightApp):
    def on_mount(self):
        self.set_interval(0.005, self.check)
        self.waiting = True

    def check(self):
        screen = self.screen
        if not self.waiting or not isinstance(screen, Dashboard) or not screen.query(ExperimentTable):
            return
        if len(screen.query_one(ExperimentTable).rows) >= expected and len(screen.query_one(ScorePlot).ledger) >= expected:
            self.waiting = False
            self.call_after_refresh(self.painted)

    def painted(self):
        figures["first_paint_s"] = time.perf_counter() - start
        child = resource.getrusage(resource.RUSAGE_CHILDREN)  # the ledger's reader (tui/prefetch.py), reaped by now
        figures["cpu_s"] = time.process_time() + child.ru_utime + child.ru_stime  # every thread: the worker's reads too
        figures["peak_mb"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, child.ru_maxrss) / 1024
        screen = self.screen
        for _ in range(100):
            screen.poll_once()  # warm
        t = time.perf_counter()
        for _ in range(2000):
            screen.poll_once()
        figures["idle_poll_ms"] = (time.perf_counter() - t) / 2000 * 1000
        self.exit()


Timed(db).run(headless=True, size=(80, 24))
print(json.dumps(figures))
"""


def tui(db: Path, n: int, cwd: Path, runs: int) -> dict:
    samples = []
    for _ in range(runs + 1):  # the first writes the bytecode caches and warms the disk cache; not counted
        done = subprocess.run([sys.executable, "-c", PROBE, str(db), str(n + 1)], capture_output=True, text=True,
                              timeout=600, cwd=cwd, env=ENV)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    samples = samples[1:]
    return {"paint": statistics.median(s["first_paint_s"] for s in samples),
            "cpu": statistics.median(s["cpu_s"] for s in samples),
            "mb": max(s["peak_mb"] for s in samples),
            "poll": statistics.median(s["idle_poll_ms"] for s in samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stores", type=Path, help="keep the stores here and reuse them")
    parser.add_argument("--fill", nargs=2, metavar=("N", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(Path(args.fill[1]), int(args.fill[0]))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = args.stores or Path(tempfile.mkdtemp(prefix="overnight-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    cmd = overnight()
    started = os.getloadavg()[0]
    try:
        help_ = median(cmd + ["--help"], folder, args.runs * 3)
        rows = [("overnight --help", fig(help_["wall"], help_["cpu"]), "", "<= 0.15 s")]
        by_size = {}
        for n in sizes:
            db = store_of(folder, n)
            at = lambda *words: median(cmd + [*words, "--db", str(db)], folder, args.runs)  # noqa: E731
            figures = {"status": at("status"), "log": at("log"), "log --all": at("log", "--all"),
                       "export": at("export", "-o", "-"),
                       "recipes list": median(cmd + ["recipes", "list"], folder, args.runs),
                       "tui": tui(db, n, folder, max(3, args.runs // 2))}
            by_size[n] = figures
        rows += table(by_size)
    finally:
        if not args.stores:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"load average {started:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs; "
          f"medians of {args.runs} runs (the TUI: {max(3, args.runs // 2)}) "
          "(wall, and CPU in brackets); memory is the peak of the process")
    heads = ["what"] + [f"{n:,} stored" for n in sizes] + ["target"]
    widths = [max(len(str(r[i])) for r in [heads, *rows]) for i in range(len(heads))]
    for r in [heads, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def fig(wall: float, cpu: float | None = None, mb: float | None = None) -> str:
    text = f"{wall:.2f} s"
    if cpu is not None:
        text += f" ({cpu:.2f})"
    if mb is not None:
        text += f", {mb:.0f} MB"
    return text


def table(by_size: dict[int, dict]) -> list[tuple]:
    sizes = list(by_size)
    row = lambda what, cell, target: (what, *[cell(by_size[n]) for n in sizes], target)  # noqa: E731
    out = [row(f"`{name}`", lambda f, k=name: fig(f[k]["wall"], f[k]["cpu"], f[k]["mb"]), target)
           for name, target in (("status", "<= 0.25 s"), ("log", "<= 0.25 s; <= 0.5 s, <= 100 MB at 100k"),
                                ("log --all", "streams: memory flat"), ("recipes list", "<= 0.25 s"))]
    out.append(row("`export` first row", lambda f: fig(f["export"]["first"]), "< 0.3 s"))
    out.append(row("`export` total", lambda f: fig(f["export"]["wall"], f["export"]["cpu"], f["export"]["mb"]),
                   "streams: memory flat"))
    out.append(row("TUI first paint", lambda f: fig(f["tui"]["paint"], f["tui"]["cpu"], f["tui"]["mb"]),
                   "<= 0.8 s, <= 150 MB at 100k"))
    out.append(row("TUI idle poll", lambda f: f"{f['tui']['poll']:.3f} ms", "< 0.1 ms"))
    return out


if __name__ == "__main__":
    main()
