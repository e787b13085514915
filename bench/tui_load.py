"""How fast the TUI opens a long run, and how much memory it takes.
Targets: first paint within 1 s and at most 250 MB with 10,000 experiments.

Run: python bench/tui_load.py [EXPERIMENTS]. Prints figures and asserts nothing.

A store is filled with one run of 10,000 experiments (bulk inserts, every status,
rationales and diffs of realistic length; bench/scale.py's store). Then, in a fresh interpreter each time
(so imports are counted, as when a person types `overnight tui`), the app opens
headless at 80x24 and the time is taken when the dashboard has painted with every
experiment in its table and plot. Also measured: a live poll that finds nothing
new, one that finds 100 new experiments, and opening the best experiment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scale import ENV, store_of  # noqa: E402  (beside this file)


# Runs in the fresh interpreter: times the first paint, then the rest, and prints JSON.
PROBE = r"""
import json, resource, sys, time
start = time.perf_counter()
from overnight.tui.app import OvernightApp
from overnight.tui.dashboard import Dashboard
from overnight.tui.experiment_table import ExperimentTable
imported = time.perf_counter() - start
db, expected = sys.argv[1], int(sys.argv[2])
figures = {"import_s": imported}


class Timed(OvernightApp):
    def on_mount(self):
        # (Textual calls OvernightApp.on_mount as well: handlers run for each class that has one.)
        self.set_interval(0.005, self.check)
        self.stage = "paint"

    def table(self):
        if isinstance(self.screen, Dashboard) and self.screen.query(ExperimentTable):
            return self.screen.query_one(ExperimentTable)

    def check(self):
        if self.stage == "paint":
            table = self.table()
            if table is not None and len(table.rows) >= expected:
                self.stage = "painting"
                self.call_after_refresh(self.painted)
        elif self.stage == "live" and len(self.table().rows) >= expected + 100:
            figures["live_100_s"] = time.perf_counter() - self.live_started
            self.stage = "detail"
            self.detail_started = time.perf_counter()
            table = self.table()
            ledger = table.ledger
            best = ledger.row(min((i for i in range(len(ledger)) if ledger.score(i) is not None), key=ledger.scores.__getitem__))
            self.open_experiment(best["run_id"], best["id"])
        elif self.stage == "detail" and type(self.screen).__name__ == "Detail" and self.screen.exp is not None:
            self.stage = "detail-painting"
            self.call_after_refresh(self.detail_painted)

    def painted(self):
        figures["first_paint_s"] = time.perf_counter() - start
        data = self.data
        t = time.perf_counter()
        for _ in range(100):
            data.max_experiment_id(1)
            data.run(1)
        figures["idle_poll_ms"] = (time.perf_counter() - t) / 100 * 1000
        # Another process records 100 experiments: the dashboard takes them in on its next poll.
        import sqlite3
        conn = sqlite3.connect(db)
        names = [d[0] for d in conn.execute("select * from experiments limit 0").description]
        last = conn.execute("select * from experiments order by seq desc limit 1").fetchone()
        row = dict(zip(names, last))
        with conn:
            for i in range(1, 101):
                conn.execute(f"insert into experiments ({', '.join(n for n in names if n != 'id')}) values ({', '.join('?' * (len(names) - 1))})",
                             [row[n] if n != "seq" else row["seq"] + i for n in names if n != "id"])
        conn.close()
        self.live_started = time.perf_counter()
        self.stage = "live"

    def detail_painted(self):
        figures["open_detail_s"] = time.perf_counter() - self.detail_started
        figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.exit()


Timed(db).run(headless=True, size=(80, 24))
print(json.dumps(figures))
"""


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        # bench/scale.py's store, written in a process of its own: a child started later would
        # count this one's memory as its own.
        db = store_of(Path(tmp), n)
        print(f"store: {n:,} experiments written in {time.perf_counter() - t:.2f} s ({db.stat().st_size / 1e6:.1f} MB)")
        runs = []
        for _ in range(3):
            done = subprocess.run([sys.executable, "-c", PROBE, str(db), str(n + 1)], capture_output=True, text=True,
                                  timeout=300, cwd=tmp, env=ENV)
            if done.returncode != 0:
                print(done.stderr)
                raise SystemExit(1)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["first_paint_s"])
    worst_mb = max(r["peak_mb"] for r in runs)
    print(f"imports (textual, the app):         {best['import_s']:.2f} s")
    every = ", ".join(f"{r['first_paint_s']:.2f}" for r in runs)
    print(f"first paint, 80x24, {n:,} exps:   {best['first_paint_s']:.2f} s  (best of 3; target <= 1 s; all: {every})")
    print(f"peak memory:                        {worst_mb:.0f} MB  (target <= 250 MB)")
    print(f"idle poll (max id + run row):       {best['idle_poll_ms']:.2f} ms")
    print(f"100 new experiments shown within:   {best['live_100_s']:.2f} s  (poll every 0.5 s)")
    print(f"open the best experiment:           {best['open_detail_s']:.2f} s")


if __name__ == "__main__":
    main()
