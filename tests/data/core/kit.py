"""Helpers the core tests share: write a recipe folder, read the store back, check processes."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from pathlib import Path

# A scorer for the `command` metric: the length of the file, with words that fail on purpose.
SCORE_SH = r"""
f="$1"
if grep -q CRASH "$f"; then echo "about to fail" ; echo "boom: CRASH requested" >&2; exit 3; fi
if grep -q SLEEP "$f"; then
  # A child that would outlive its parent if only the shell were killed.
  sh -c 'echo $$ > "$0"; exec sleep 60' "$OVERNIGHT_RECIPE_DIR/orphan.pid" &
  sleep 60
fi
if grep -q NONUM "$f"; then echo "no score here"; exit 0; fi
echo "$(cat "$f")" >> "$OVERNIGHT_RECIPE_DIR/calls.log"
wc -c < "$f"
"""


# A noisy metric we can script: the view is a list of numbers, and the n-th measurement of a
# view returns its n-th number (the last one from then on). Every call is written down.
NOISY = '''
import pathlib

def score(path):
    text = pathlib.Path(path).read_text().strip()
    log = pathlib.Path(__file__).with_name("calls.log")
    seen = log.read_text().splitlines() if log.exists() else []
    with log.open("a") as f:
        f.write(text + "\\n")
    values = [float(v) for v in text.split()]
    return values[min(seen.count(text), len(values) - 1)]
'''


def recipe(
    folder: Path,
    *,
    text: str = "hello\n",
    proposals: list = (),
    metric: str = 'kind = "command"\nrun = "sh {recipe}/score.sh {file}"',
    budget: str = "",
    guards: str = "",
    agent: str = 'kind = "scripted"\nfile = "proposals.jsonl"',
    surface: str = 'kind = "text"\npath = "doc.txt"',
    files: dict[str, str] | None = None,
    name: str | None = None,
) -> Path:
    """A recipe folder: a text surface, a metric, a scripted agent with these proposals."""
    folder.mkdir(parents=True, exist_ok=True)
    toml = f"""
[recipe]
name = "{name or folder.name}"

[surface]
{surface}

[metric]
{metric}

{guards}

[agent]
{agent}

[budget]
{budget}
"""
    (folder / "recipe.toml").write_text(textwrap.dedent(toml).lstrip())
    (folder / "doc.txt").write_text(text)
    (folder / "score.sh").write_text(SCORE_SH.lstrip())
    (folder / "proposals.jsonl").write_text("".join(json.dumps(_proposal(p, i)) + "\n" for i, p in enumerate(proposals, 1)))
    for name_, content in (files or {}).items():
        path = folder / name_
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"))
    return logs_beside(folder)


# Files the test metrics and agents write through $OVERNIGHT_RECIPE_DIR (the work copy) or beside their code,
# and `slow`, which tests write while a run goes on: links to files beside the folder, which stays as it was.
LOGS = ("calls.log", "times.log", "orphan.pid", "contexts.jsonl", "metric.pid", "started.log", "slow")


def logs_beside(folder: Path) -> Path:
    """Metrics may not write the recipe folder: what the test ones log lands beside it, through links."""
    for name in LOGS:
        log = folder / name
        if not log.is_symlink() and not log.exists():
            log.symlink_to(folder.parent / f".{folder.name}.{name}")
    return folder


def _proposal(p, i: int) -> dict:
    if isinstance(p, str):
        return {"view": p, "rationale": f"idea {i}"}
    return p


def rows(db: Path, sql: str, args=()) -> list[dict]:
    """Rows of a query on a store, read with plain sqlite3 (what other tools would do)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def experiments(db: Path, run_id: int | None = None) -> list[dict]:
    if run_id is None:
        run_id = rows(db, "select max(id) id from runs")[0]["id"]
    return rows(db, "select * from experiments where run_id = ? order by seq", [run_id])


def lines_recorded(db: Path, *, measured_only: bool = False) -> list[int]:
    """The scripted proposal line of every experiment of the latest run, in order."""
    out = []
    for e in experiments(db):
        if e["status"] == "baseline" or (measured_only and e["status"] == "interrupted"):
            continue
        out.append(json.loads(e["meta"])["line"])
    return out


def alive(pid: int) -> bool:
    """True while a process runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def no_traceback(text: str) -> bool:
    return "Traceback" not in text and 'File "' not in text
