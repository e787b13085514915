"""The TUI's window on the store: one shared connection, cheap polls, and writes through the operations.

Every method is called from a worker thread, never from the UI's event loop.
One connection is shared by those threads, hence the lock. The queries are the
store's own (core/store.py); what is here is when to open, and what shape the
screens want.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from overnight.core.contracts import STATUSES
from overnight.core.errors import OvernightError
from overnight.core.store import Store, has_runs

from . import prefetch
from .ledger import Ledger

# The text read with a run's ledger: the newest rows, which the table shows first (a short
# run's every row); the table asks for the others as they come into view.
TEXT_FIRST = 1000


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
        return self.store is not None or has_runs(self.path)

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
        prefetch.discard()
        with self.lock:
            self.closed = True
            if self.store is not None:
                self.store.close()
                self.store = None

    def read(self, fn, *args):
        """`fn(store, *args)` under the lock: one thread at a time on the shared connection."""
        with self.lock:
            return fn(self.open(), *args)

    # -- runs ---------------------------------------------------------------

    def runs_stamp(self) -> Stamp:
        return Stamp(*self.read(Store.runs_stamp))

    def runs(self) -> list[dict]:
        return self.read(Store.runs_overview)

    def run(self, run_id: int) -> dict | None:
        return self.read(Store.run, run_id)

    # -- experiments ----------------------------------------------------------

    def ledger(self, run_id: int) -> Ledger:
        """The run's experiments as numbers, from one covering index, with the text of the newest.
        The first may have been read already, by the process `overnight tui` started (tui/prefetch.py)."""
        ledger = prefetch.take(self.path, run_id)
        with self.lock:
            store = self.open()
            if ledger is None:
                ledger = read_ledger(store, run_id)
            ledger.add_text(store.experiments_newest(run_id, TEXT_FIRST))
        return ledger

    def max_experiment_id(self, run_id: int) -> int:
        return self.read(Store.max_experiment_id, run_id)

    def experiments_after(self, run_id: int, after_id: int) -> list[dict]:
        return self.read(Store.experiments_after, run_id, after_id)

    def experiments_changed(self, run_id: int, ids: list[int]) -> list[dict]:
        """Rows the loop updates after recording them (the holdout score at the end of a run)."""
        return self.read(Store.experiments_light, ids)

    def experiments_light(self, ids: list[int]) -> list[dict]:
        """A page of rows by id: the ones the table is about to show."""
        return self.read(Store.experiments_light, ids)

    def experiment(self, exp_id: int) -> dict | None:
        return self.read(Store.experiment, exp_id)

    def experiment_at(self, run_id: int, seq: int) -> dict | None:
        return self.read(Store.experiment_at, run_id, seq)

    def view(self, digest: str | None) -> str | None:
        return self.read(Store.candidate, digest) if digest else None

    def examples(self, exp_id: int) -> list[dict]:
        return self.read(Store.example_results, exp_id)

    def llm_calls(self, exp_id: int) -> list[dict]:
        return self.read(lambda store: store.llm_calls(None, experiment_id=exp_id))

    def reviews(self, exp_id: int) -> list[dict]:
        return self.read(Store.experiment_reviews, exp_id)

    def remeasures(self, exp_id: int) -> list[float]:
        return self.read(Store.remeasures, exp_id)

    def notes(self, recipe: str) -> list[dict]:
        return self.read(Store.notes, recipe)

    # -- writes ---------------------------------------------------------------

    def write(self, fn, *args, **kwargs):
        """Runs a write with the store (an operation of overnight.ops); the busy timeout waits out another writer."""
        with self.lock:
            return fn(self.open(), *args, **kwargs)


def read_ledger(store: Store, run_id: int, each=None) -> Ledger:
    """A run's experiments as numbers, batch by batch from the covering index (no text);
    `each(ledger)` after every batch."""
    ledger = Ledger(run_id)
    for batch in store.experiment_points(run_id, codes=STATUSES):
        ledger.take(batch)
        if each is not None:
            each(ledger)
    return ledger
