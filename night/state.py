"""Where a night stands, in the workspace's store: its tables are a migration set of their own
beside the loop's, so the night survives a SIGKILL exactly as a run does."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

# Items: pending -> running -> finished | failed | stopped | skipped. Nights: running, stopped, finished.
DONE = ("finished", "failed", "stopped", "skipped")


def _migrations():
    """The night's own migration set; sqlite-utils is imported only by a command that writes a night."""
    from sqlite_utils.migrations import Migrations

    found = Migrations("overnight.night")
    found(name="001_nights")(_nights)
    return found


def _nights(db) -> None:
    db["nights"].create({
        "id": int, "status": str, "until": float, "minutes": float, "pid": int, "digest": str,
        "report": str, "started_at": float, "updated_at": float, "ended_at": float,
    }, pk="id")
    db["night_items"].create({
        "id": int, "night_id": int, "position": int, "recipe": str, "path": str, "status": str,
        "reason": str, "run_id": int, "pid": int, "log": str, "started_at": float, "ended_at": float,
    }, pk="id", foreign_keys=[("night_id", "nights", "id")])
    db["night_items"].create_index(["night_id", "position"], unique=True)


@dataclass
class Item:
    id: int
    night_id: int
    position: int
    recipe: str
    path: str
    status: str
    reason: str | None
    run_id: int | None
    pid: int | None
    log: str | None
    started_at: float | None
    ended_at: float | None


class Nights:
    """The night's rows in one store (the store's own connection; WAL lets a run write meanwhile)."""

    def __init__(self, store, *, write: bool = True):
        self.store = store
        if write:  # a reader (`overnight status`) needs neither the tables made nor sqlite-utils
            migrations = _migrations()
            if migrations.pending(store.db):
                migrations.apply(store.db)

    @property
    def db(self):
        return self.store.db

    @staticmethod
    def exists(store) -> bool:
        """Whether this store ever held a night (reading it must not create the tables)."""
        return store.has_table("nights")

    def start(self, recipes: list[tuple[str, Path]], until: float | None, minutes: float | None) -> int:
        now = time.time()
        with self.db.conn:
            night_id = self.db["nights"].insert({"status": "running", "until": until, "minutes": minutes, "pid": os.getpid(),
                                                 "started_at": now, "updated_at": now}).last_pk
            self.db["night_items"].insert_all({"night_id": night_id, "position": i, "recipe": name, "path": str(path),
                                               "status": "pending"} for i, (name, path) in enumerate(recipes, 1))
        return night_id

    def night(self, night_id: int) -> dict | None:
        return self.store.night(night_id)

    def latest(self, statuses: tuple[str, ...] | None = None) -> dict | None:
        return self.store.latest_night(statuses)

    def items(self, night_id: int) -> list[Item]:
        return [Item(**{k: r[k] for k in Item.__dataclass_fields__}) for r in self.store.night_items(night_id)]

    def update(self, night_id: int, **fields) -> None:
        self.db["nights"].update(night_id, {**fields, "updated_at": time.time()})

    def update_item(self, item: Item, **fields) -> None:
        self.db["night_items"].update(item.id, fields)
        for key, value in fields.items():
            setattr(item, key, value)

    def run_of(self, item: Item) -> dict | None:
        """The run this item started: its own id once known, else the recipe's run begun since."""
        if item.run_id:
            return self.store.run(item.run_id)
        if not item.started_at:
            return None
        # The one its own process started: another run of the recipe may have begun meanwhile (by hand,
        # while this item's run was refused, say).
        return self.store.latest_run_since(item.recipe, item.started_at - 1, pid=item.pid)
