"""Soak: a long run killed with SIGKILL every few seconds and resumed, until it ends.

An instant metric (text-stats characters) and a scripted agent with N distinct proposals;
`overnight run` is killed at a random moment 0.5-3 seconds after it records its first
experiment (so every session moves on, however slow the machine starts Python) and resumed with
`--resume`, again and again. At the end it prints what a kill could have cost:

    lost        proposals never recorded as measured
    duplicated  proposals measured more than once
    corrupt     integrity_check not ok, or best / baseline not what the experiments say
    orphan      processes of a killed run still alive, work folders left behind

All four must be 0.

    python bench/soak.py [--experiments 10000] [--parallel 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RECIPE = """[recipe]
name = "soak"

[surface]
kind = "text"
path = "doc.txt"

[metric]
kind = "text-stats"
stat = "characters"
goal = "maximize"

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
experiments = {n_exp}
parallel = {parallel}
patience = {n}
max_failures = {n}
per_experiment_seconds = 30
"""


def write_recipe(folder: Path, n: int, parallel: int, rng: random.Random) -> None:
    folder.mkdir(parents=True)
    (folder / "recipe.toml").write_text(RECIPE.format(parallel=parallel, n=n + 10, n_exp=n))
    (folder / "doc.txt").write_text("start\n")
    with (folder / "proposals.jsonl").open("w") as f:
        for i in range(1, n + 1):
            # Distinct views; a longer one now and then, so keeps happen all along the run.
            length = rng.randint(1, 40) + (i // 50 if rng.random() < 0.05 else 0)
            f.write(json.dumps({"view": f"{i} " + "x" * length + "\n", "rationale": f"idea {i}"}) + "\n")


def tagged(pids: set[int]) -> list[int]:
    """Processes still carrying the process tag of one of these overnight processes."""
    markers = tuple(f"OVERNIGHT_PROCESS_TAG={p}-".encode() for p in pids)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(v.startswith(markers) for v in env):
                found.append(int(entry.name))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiments", type=int, default=10_000)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--max-seconds", type=float, default=3.0)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    root = Path(tempfile.mkdtemp(prefix="overnight-soak-"))
    (root / "tmp").mkdir()
    folder = root / "soak"
    write_recipe(folder, args.experiments, args.parallel, rng)
    original = (folder / "doc.txt").read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("OVERNIGHT_DB", "OVERNIGHT_KILL_AT")}
    env["TMPDIR"] = str(root / "tmp")
    db = root / ".overnight" / "overnight.db"

    started, kills, sessions, pids = time.monotonic(), 0, 0, set()
    resume: list[str] = []
    while True:
        sessions += 1
        proc = subprocess.Popen([sys.executable, "-m", "overnight.cli.main", "run", str(folder), "--yes", "-q", *resume],
                                cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        pids.add(proc.pid)
        # On a loaded machine starting Python can take longer than the kill interval: the clock
        # of a session starts once it records its first experiment, so every session moves on.
        before = _recorded(db)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _recorded(db) <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            out, _ = proc.communicate(timeout=rng.uniform(args.min_seconds, args.max_seconds))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
            resume = ["--resume"] if db.exists() and _has_run(db) else []
            print(f"\r{time.monotonic() - started:7.0f} s  kills {kills:4d}  recorded {_recorded(db):6d}", end="", flush=True)
            continue
        if proc.returncode != 0:
            print(f"\nsession {sessions} ended with {proc.returncode}:\n{out}")
            raise SystemExit(1)
        break
    seconds = time.monotonic() - started
    time.sleep(0.5)  # let a watchdog finish its sweep
    print()
    print(out.strip().splitlines()[0] if out.strip() else "")
    report(db, args.experiments, kills, sessions, seconds, pids, root, folder, original)


def _has_run(db: Path) -> bool:
    try:
        return bool(_query(db, "select count(*) from runs")[0][0])
    except sqlite3.Error:
        return False


def _recorded(db: Path) -> int:
    try:
        return _query(db, "select count(*) from experiments where seq > 0")[0][0]
    except sqlite3.Error:
        return 0


def _query(db: Path, sql: str):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def report(db, n, kills, sessions, seconds, pids, root, folder, original) -> None:
    from overnight.core.state import from_rows

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    integrity = conn.execute("pragma integrity_check").fetchone()[0]
    runs = [dict(r) for r in conn.execute("select * from runs")]
    rows = [dict(r) for r in conn.execute("select * from experiments order by seq")]
    conn.close()
    measured = Counter(json.loads(r["meta"])["line"] for r in rows if r["status"] not in ("baseline", "interrupted"))
    lost = sum(1 for line in range(1, n + 1) if line not in measured)
    duplicated = sum(c - 1 for c in measured.values() if c > 1)
    base, best = from_rows(rows, runs[0]["goal"])
    wrong = [len(runs) != 1, integrity != "ok", base is None,
             base is not None and runs[0]["baseline_experiment"] != base["id"],
             best is not None and (runs[0]["best_experiment"], runs[0]["best_score"]) != (best["id"], best["score"]),
             (folder / "doc.txt").read_bytes() != original]
    corrupt = sum(wrong)
    orphans = len(tagged(pids)) + len(list((root / "tmp").glob("overnight-work-*")))
    print(f"experiments {n}, sessions {sessions}, SIGKILLs {kills}, {seconds:.0f} s "
          f"({n / seconds:.1f} experiments/s with the restarts), run status {runs[0]['status']}")
    print(f"lost {lost} / duplicated {duplicated} / corrupt {corrupt} / orphan {orphans}")
    if lost or duplicated or corrupt or orphans:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
