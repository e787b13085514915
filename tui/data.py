"""The TUI's window on the store: cheap polls, light rows, and the review actions.

Every method is called from a worker thread, never from the UI's event loop.
One connection is shared by those threads, hence the lock. Polls ask for the
highest id only, and then for the rows past it, so a store of 10,000
experiments is read once and never again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from overnight.core.errors import OvernightError
from overnight.core.store import Store

# What the dashboard needs of an experiment; diffs, traces and views stay in the store
# until an experiment is opened.
LIGHT = ("id, run_id, seq, status, substr(reason, 1, 200) as reason, score, holdout_score, delta, "
         "substr(rationale, 1, 200) as rationale")


@dataclass(frozen=True)
class Stamp:
    """What changed in the runs table since the last look."""

    count: int
    max_id: int
    updated: float


class Data:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.store: Store | None = None
        self.lock = threading.RLock()
        self.closed = False

    # -- opening ------------------------------------------------------------

    def exists(self) -> bool:
        """True once a run has created the store and its tables (not while it is being made)."""
        if not self.path.exists():
            return False
        if self.store is not None:
            return True
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            try:
                return bool(conn.execute("select 1 from sqlite_master where name = 'runs'").fetchone())
            finally:
                conn.close()
        except sqlite3.Error:
            return True  # not a store at all: open() says so in a sentence

    def open(self) -> Store:
        """Opens the store; a newer version's store is refused before anything is written."""
        with self.lock:
            if self.closed:
                raise OvernightError("The TUI has closed the store.")
            if self.store is None:
                try:
                    self.store = Store(self.path, readonly=True)
                except OvernightError as exc:
                    if "needs an upgrade" not in exc.message:
                        raise
                    # Written by an older overnight: upgrade it, as every command that writes does.
                    self.store = Store(self.path)
            return self.store

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.store is not None:
                self.store.close()
                self.store = None

    def _rows(self, sql: str, args=()) -> list[dict]:
        with self.lock:
            return list(self.open().db.query(sql, list(args)))

    # -- runs ---------------------------------------------------------------

    def runs_stamp(self) -> Stamp:
        row = self._rows("select count(*) n, coalesce(max(id), 0) m, coalesce(max(updated_at), 0) u from runs")[0]
        return Stamp(row["n"], row["m"], row["u"])

    def runs(self) -> list[dict]:
        return self._rows("select id, recipe, status, stop_reason, control, goal, baseline_score, best_score, "
                          "holdout_baseline, holdout_best, experiments, usd, seconds, started_at, ended_at "
                          "from runs order by id desc")

    def run(self, run_id: int) -> dict | None:
        rows = self._rows("select * from runs where id = ?", [run_id])
        return rows[0] if rows else None

    # -- experiments ----------------------------------------------------------

    def max_experiment_id(self, run_id: int) -> int:
        # The (run_id, seq) index answers this without reading the rows.
        return self._rows("select coalesce(max(id), 0) m from experiments where run_id = ?", [run_id])[0]["m"]

    def experiments_after(self, run_id: int, after_id: int) -> list[dict]:
        return self._rows(f"select {LIGHT} from experiments where run_id = ? and id > ? order by id", [run_id, after_id])

    def experiments_changed(self, run_id: int, ids: list[int]) -> list[dict]:
        """Rows the loop updates after recording them (the holdout score at the end of a run)."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self._rows(f"select {LIGHT} from experiments where id in ({marks})", ids)

    def experiment(self, exp_id: int) -> dict | None:
        rows = self._rows("select * from experiments where id = ?", [exp_id])
        return rows[0] if rows else None

    def experiment_at(self, run_id: int, seq: int) -> dict | None:
        rows = self._rows("select * from experiments where run_id = ? and seq = ?", [run_id, seq])
        return rows[0] if rows else None

    def view(self, digest: str | None) -> str | None:
        if not digest:
            return None
        rows = self._rows("select view from candidates where digest = ?", [digest])
        return rows[0]["view"] if rows else None

    def examples(self, exp_id: int) -> list[dict]:
        return self._rows("select * from example_results where experiment_id = ? order by id", [exp_id])

    def llm_calls(self, exp_id: int) -> list[dict]:
        return self._rows("select * from llm_calls where experiment_id = ? order by id", [exp_id])

    def reviews(self, exp_id: int) -> list[dict]:
        return self._rows("select * from reviews where experiment_id = ? order by id", [exp_id])

    def remeasures(self, exp_id: int) -> list[float]:
        samples: list[float] = []
        for r in self._rows("select note from reviews where experiment_id = ? and action = 'remeasured' order by id", [exp_id]):
            samples += [float(x) for x in json.loads(r["note"] or "[]")]
        return samples

    def notes(self, recipe: str) -> list[dict]:
        return self._rows("select * from notes where recipe = ? order by id", [recipe])

    # -- writes ---------------------------------------------------------------

    def write(self, fn, *args, **kwargs):
        """Runs a write with the store; the busy timeout waits out another writer."""
        with self.lock:
            return fn(self.open(), *args, **kwargs)

