"""Where a night stands, in the workspace's store: its tables are a migration set of their own
beside the loop's, so the night survives a SIGKILL exactly as a run does."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils.migrations import Migrations

migrations = Migrations("overnight.night")

# Items: pending -> running -> finished | failed | stopped | skipped. Nights: running, stopped, finished.
DONE = ("finished", "failed", "stopped", "skipped")


@migrations(name="001_nights")
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

    def __init__(self, store):
        self.store = store
        self.db = store.db
        if migrations.pending(self.db):
            migrations.apply(self.db)

    @staticmethod
    def exists(store) -> bool:
        """Whether this store ever held a night (reading it must not create the tables)."""
        return store.db["nights"].exists()

    def start(self, recipes: list[tuple[str, Path]], until: float | None, minutes: float | None) -> int:
        now = time.time()
        with self.db.conn:
            night_id = self.db["nights"].insert({"status": "running", "until": until, "minutes": minutes, "pid": os.getpid(),
                                                 "started_at": now, "updated_at": now}).last_pk
            self.db["night_items"].insert_all({"night_id": night_id, "position": i, "recipe": name, "path": str(path),
                                               "status": "pending"} for i, (name, path) in enumerate(recipes, 1))
        return night_id

    def night(self, night_id: int) -> dict | None:
        rows = list(self.db.query("select * from nights where id = ?", [night_id]))
        return rows[0] if rows else None

    def latest(self, statuses: tuple[str, ...] | None = None) -> dict | None:
        sql, args = "select * from nights", []
        if statuses:
            sql += f" where status in ({','.join('?' * len(statuses))})"
            args = list(statuses)
        rows = list(self.db.query(sql + " order by id desc limit 1", args))
        return rows[0] if rows else None

    def items(self, night_id: int) -> list[Item]:
        rows = self.db.query("select * from night_items where night_id = ? order by position", [night_id])
        return [Item(**{k: r[k] for k in Item.__dataclass_fields__}) for r in rows]

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
        rows = list(self.db.query("select * from runs where recipe = ? and started_at >= ? order by id desc limit 1",
                                  [item.recipe, item.started_at - 1]))
        return rows[0] if rows else None
