"""Everything the loop learns goes to one SQLite file, through this module only."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
import weakref
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, NamedTuple, Sequence

from .contracts import Attempt, ExampleResult, LLMCall
from .errors import OvernightError
from .parts import PARTS_FROM, name, split_like
from .secrets import redact_toml, scrub, secret_values

if TYPE_CHECKING:
    import sqlite_utils


class Migrations:
    """The schema's numbered steps, recorded as sqlite-utils' Migrations records them.

    Declared without importing sqlite-utils, which brings numpy (0.2 s): a store that is up
    to date is opened and read with the standard library's sqlite3 alone, a new one is made
    from the schema the steps end at (core/schema.py), and sqlite-utils is imported only to
    apply a step an older store lacks.
    """

    class Step(NamedTuple):
        name: str
        fn: Callable

    table = "_sqlite_migrations"

    def __init__(self, name: str):
        self.name = name
        self._migrations: list[Migrations.Step] = []

    def __call__(self, *, name: str):
        def inner(fn):
            self._migrations.append(self.Step(name, fn))
            return fn

        return inner

    def applied(self, conn: sqlite3.Connection) -> list[str]:
        if not conn.execute("select 1 from sqlite_master where type = 'table' and name = ?", [self.table]).fetchone():
            return []
        return [r[0] for r in conn.execute(f"select name from {self.table} where migration_set = ? order by rowid", [self.name])]

    def create(self, conn: sqlite3.Connection) -> None:
        """An empty database made as every step would leave it (core/schema.py), the steps recorded
        as applied as sqlite-utils records them; all of it or nothing."""
        import datetime

        from .schema import statements

        conn.execute("begin")
        try:
            for statement in statements():
                conn.execute(statement)
            now = str(datetime.datetime.now(datetime.timezone.utc))
            conn.executemany(f"insert into {self.table} (migration_set, name, applied_at) values (?, ?, ?)",
                             [(self.name, step.name, now) for step in self._migrations])
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")

    def apply(self, db: "sqlite_utils.Database") -> None:
        from sqlite_utils.migrations import Migrations as Steps

        steps = Steps(self.name)
        for step in self._migrations:
            steps(name=step.name)(step.fn)
        steps.apply(db)


migrations = Migrations("overnight")


@migrations(name="001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {
            "id": int, "recipe": str, "recipe_path": str, "recipe_text": str, "recipe_digest": str,
            "config": str, "status": str, "stop_reason": str, "control": str,
            "baseline_experiment": int, "best_experiment": int,
            "baseline_score": float, "best_score": float, "noise": float, "goal": str,
            "holdout_baseline": float, "holdout_best": float,
            "source_path": str, "source_fingerprint": str,
            "experiments": int, "usd": float, "tokens": int, "seconds": float,
            "started_at": float, "updated_at": float, "ended_at": float, "pid": int,
        },
        pk="id",
    )
    db["runs"].create_index(["recipe"])
    db["candidates"].create({"digest": str, "view": str}, pk="digest")
    db["experiments"].create(
        {
            "id": int, "run_id": int, "seq": int, "parent": int, "candidate": str,
            "status": str, "reason": str, "score": float, "samples": str, "components": str,
            "holdout_score": float, "delta": float, "rationale": str, "diff": str,
            "trace": str, "agent_trace": str, "meta": str, "error": str,
            "started_at": float, "seconds": float, "cost_usd": float, "tokens": int,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["experiments"].create_index(["run_id", "seq"], unique=True)
    db["experiments"].create_index(["run_id", "status"])
    db["example_results"].create(
        {
            "id": int, "experiment_id": int, "example_id": str, "split": str, "input": str,
            "output": str, "expected": str, "score": float, "feedback": str,
        },
        pk="id",
    )
    db["example_results"].create_index(["experiment_id"])
    db["llm_calls"].create(
        {
            "id": int, "run_id": int, "experiment_id": int, "role": str, "model": str,
            "messages": str, "response": str, "prompt_tokens": int, "completion_tokens": int,
            "cost_usd": float, "seconds": float, "cached": int, "error": str,
            "cache_key": str, "created_at": float,
        },
        pk="id",
    )
    db["llm_calls"].create_index(["run_id"])
    db["llm_calls"].create_index(["cache_key"])
    db["reviews"].create(
        {
            "id": int, "run_id": int, "experiment_id": int, "recipe": str, "action": str,
            "note": str, "path": str, "backup": str, "previous": str, "created_at": float,
        },
        pk="id",
    )
    db["notes"].create(
        {"id": int, "recipe": str, "run_id": int, "kind": str, "text": str, "created_at": float},
        pk="id",
    )
    db["notes"].create_index(["recipe"])


@migrations(name="002_check_confirm_explain")
def _trust_the_gains(db: sqlite_utils.Database) -> None:
    # Confirmation at the end of a run: the baseline and the best measured again, afresh.
    for column in ("confirmed_baseline", "confirmed_best", "confirmed_holdout_baseline", "confirmed_holdout_best"):
        db["runs"].add_column(column, float)
    db["runs"].add_column("confirmation", str)  # one sentence: held, did not hold, or why not confirmed
    db["runs"].add_column("confirmed_held", int)  # 1, 0, or NULL when nothing was confirmed
    db["checks"].create(
        {"id": int, "recipe": str, "digest": str, "verdict": str, "report": str, "created_at": float}, pk="id"
    )
    db["checks"].create_index(["recipe", "digest"])
    # `overnight explain`: what each kept change of a run still contributes at the end.
    db["contributions"].create(
        {
            "id": int, "run_id": int, "experiment_id": int, "seq": int, "rationale": str,
            "gain": float, "best_score": float, "score_without": float, "contribution": float,
            "bar": float, "status": str, "reason": str, "created_at": float,
        },
        pk="id",
    )
    db["contributions"].create_index(["run_id"])


@migrations(name="003_indexes_for_reading")
def _indexes_for_reading(db: sqlite_utils.Database) -> None:
    # A run's numbers (the TUI's table and plot, the poll's highest id) come from this index
    # alone: it covers the query, so 100,000 experiments are read without opening one row.
    db["experiments"].create_index(["run_id", "id", "seq", "status", "score", "delta"], if_not_exists=True)
    # An experiment's calls and reviews, opened one experiment at a time.
    db["llm_calls"].create_index(["experiment_id"], if_not_exists=True)
    db["reviews"].create_index(["experiment_id"], if_not_exists=True)
    db["reviews"].create_index(["run_id"], if_not_exists=True)
    db["runs"].create_index(["updated_at"], if_not_exists=True)


@migrations(name="004_applies")
def _nothing_lost(db: sqlite_utils.Database) -> None:
    # An apply in progress: written before the user's file is replaced, finished after its fingerprint.
    db["applies"].create(
        {"id": int, "run_id": int, "experiment_id": int, "path": str, "backup": str, "tmp": str,
         "old_digest": str, "new_digest": str, "state": str, "created_at": float},
        pk="id",
    )


@migrations(name="005_parts")
def _parts(db: sqlite_utils.Database) -> None:
    # A large view is kept as the names of its parts, each part once (core/parts.py).
    db["candidates"].add_column("parts", str)  # a JSON list of part names, where `view` is NULL
    db["parts"].create({"digest": str, "text": str}, pk="digest")


# A new step goes into core/schema.py too, which new stores are made from (tests/test_store.py
# fails until the two agree).

RESUMABLE = ("running", "paused", "stopped")  # paused and running: once their process is gone
_savepoints = itertools.count(1)


def default_path() -> Path:
    return Path(os.environ.get("OVERNIGHT_DB") or Path.cwd() / ".overnight" / "overnight.db")


APPLICATION_ID = 0x6F766E74  # "ovnt", in the SQLite header at offset 68 (PRAGMA application_id)
SIDE_FILES = ("-wal", "-shm", "-journal", ".lock")  # what SQLite and overnight keep beside a store
opened: "weakref.WeakSet[Store]" = weakref.WeakSet()  # this process's stores, for core/damage.py


def is_store(path: Path | str) -> bool:
    """Whether `path` is an overnight store, by its header alone (no SQLite connection, nothing written)."""
    try:
        with open(path, "rb") as f:
            head = f.read(72)
    except OSError:
        return False
    return head[:16] == b"SQLite format 3\0" and int.from_bytes(head[68:72], "big") == APPLICATION_ID


def _beside(path: Path, end: str) -> Path:
    return path.with_name(path.name + end)


def unwritable(path: Path) -> str | None:
    """What keeps this process from writing the store at `path`, as the end of a sentence: its
    folder (where SQLite makes the files it keeps beside a store), the store file or one of those
    files; None when nothing does. A folder still to be made is made in the nearest one there is."""
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    for file in (path, *(_beside(path, end) for end in SIDE_FILES)):
        if os.path.lexists(file) and not os.access(file, os.W_OK):
            return "the file is not writable" if file == path else f"{file} is not writable"
    return None


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the store; `readonly` for one this process may not write, opened without
    writing anything. A reader of a WAL store keeps a -shm file beside it, which a read-only folder
    cannot hold and which a read-only store file would get its mode (so that a later writer could
    not write it). With no -wal or -journal beside the store, the file alone holds every write and
    no writer is at work (one would have made a -wal), so SQLite reads it as immutable: no lock and
    no file beside it. Otherwise SQLite reads through the files there (SQLite 3.22 and later)."""
    if not readonly:
        return sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
    quiet = not any(_beside(path, end).exists() for end in ("-wal", "-journal"))
    uri = path.resolve().as_uri() + ("?mode=ro&immutable=1" if quiet else "?mode=ro")
    return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10, isolation_level=None)


def _new_store() -> sqlite3.Connection:
    """An empty store held in memory, for reading a file a run has not made a store yet: the same
    tables as a new store, and no write allowed."""
    conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    migrations.create(conn)
    conn.execute("PRAGMA query_only = ON")
    return conn


# After "no runs here": someone who ran overnight in another folder is told where their runs are.
ELSEWHERE = ("Each folder keeps its own store, so run this in the folder you ran overnight from (or pass --db FILE), "
             "or start a run with `overnight run RECIPE` or `overnight demo`.")

class Store:
    def __init__(self, path: Path | str | None = None, *, readonly: bool = False, create: bool = True):
        """`create=False` is for commands that only read: a folder with no store stays untouched.

        A store this process may not write (`unwritable`: a read-only folder, store file or file
        SQLite keeps beside it) is opened read-only when the command may not create it (`readonly`
        or not `create`), so its runs can still be read and a write fails naming what is not
        writable (cli/main.py); a command that may create it is refused at once. A file with
        nothing in it, as an interrupted start may leave one, reads as the new store a run would
        make of it: no runs yet."""
        self.path = Path(path) if path else default_path()
        self.readonly = readonly
        self.unwritable: str | None = None  # what keeps this process from writing the store, if anything does
        try:
            if not create and not self.path.exists():
                raise OvernightError(f"No overnight store at {self.path}. {ELSEWHERE}")
            self._create = create
            if readonly and not self.path.exists():
                raise OvernightError(f"No overnight store at {self.path}. {ELSEWHERE}")
            self.unwritable = unwritable(self.path)
            if self.unwritable and create and not readonly:
                raise OvernightError(f"Cannot write the store {self.path}: {self.unwritable}; nothing was changed.")
            if create and not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            readonly = self.readonly = readonly or self.unwritable is not None
            self.conn = _connect(self.path, readonly=self.unwritable is not None)
            if (readonly or not create) and self._unmade():
                self.conn.close()
                self.conn = _new_store()
                readonly = self.readonly = True
            # Closed at the latest as the process exits, also when the console script skips freeing
            # its objects (cli/console.py): closing folds the write-ahead log back into the store file,
            # so that a copy of the file alone holds every run.
            weakref.finalize(self, self.conn.close)
            opened.add(self)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            if self._foreign(create):
                raise OvernightError(f"{self.path} is not an overnight store; nothing was changed.")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            if not readonly:
                self._mark()
            # Read once: scrubbing every write against the environment is on the loop's hot path.
            self.secrets = secret_values()
            self._parts: set[str] = set()  # names of parts this store holds, seen by this process (core/parts.py)
            # The last large view written, its parts and their names: the next is most often an edit of
            # it, so it is cut and named from them (core/parts.py `split_like`).
            self._last: tuple[str, list[str], list[str]] = ("", [], [])
        except OvernightError:
            self._close_quietly()
            raise
        except (sqlite3.Error, OSError) as exc:
            self._close_quietly()
            why = f" ({self.unwritable})" if self.unwritable else ""
            raise OvernightError(f"Cannot open the store {self.path}: {exc}{why}.") from None

    @property
    def db(self) -> sqlite_utils.Database:
        """The store through sqlite-utils, for the schema and the writes that use it (imported on first use)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    _db = None
    _create = True

    def _close_quietly(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()

    def _migrate(self) -> None:
        """Brings the store up to date; one process at a time, and a reader waits for a store
        another process is creating instead of failing with "no such table"."""
        if self.readonly:
            deadline = time.monotonic() + 3
            while not self._applied() and time.monotonic() < deadline:
                time.sleep(0.05)
            return self._check_migrations()
        import fcntl

        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._check_migrations()

    def _unmade(self) -> bool:
        """Whether the file holds nothing yet: no table and no program's mark, as a start interrupted
        before its store was made leaves it (an empty file, or a header alone). A run makes a store
        of it; a command that only reads finds no runs in it."""
        if self.path.is_file() and not self.path.stat().st_size and not _beside(self.path, "-wal").exists():
            return True  # nothing for SQLite to read, so nothing to ask it
        return (self.conn.execute("PRAGMA application_id").fetchone()[0] == 0
                and self.conn.execute("PRAGMA user_version").fetchone()[0] == 0
                and self.conn.execute("select 1 from sqlite_master limit 1").fetchone() is None)

    def _foreign(self, create: bool) -> bool:
        """Whether the file holds another program's database, which no command may change (a run
        would add its tables to it). A new file, or a database with no table yet, becomes a store
        when `create`. Read through this connection (another descriptor of the file would drop
        SQLite's locks), and before any PRAGMA that writes: another program's database keeps its
        journal mode."""
        application = self.conn.execute("PRAGMA application_id").fetchone()[0]
        if application == APPLICATION_ID or self._applied():
            return False
        if not create or application or self.conn.execute("PRAGMA user_version").fetchone()[0]:
            return True  # another program's mark, even on a database with nothing in it yet
        return self.conn.execute("select 1 from sqlite_master limit 1").fetchone() is not None

    def _applied(self) -> set[str]:
        try:
            return set(migrations.applied(self.conn))
        except sqlite3.OperationalError:
            return set()

    def _check_migrations(self) -> None:
        known = {m.name for m in migrations._migrations}
        applied = set(migrations.applied(self.conn))
        newer = sorted(applied - known)
        if newer:
            raise OvernightError(
                f"The store {self.path} was written by a newer version of overnight "
                f"(migration {newer[-1]}); upgrade overnight to read it. Nothing was changed."
            )
        if applied != known:
            if self.unwritable:
                raise OvernightError(f"The store {self.path} needs an upgrade this version of overnight cannot write: {self.unwritable}.")
            if self.readonly:
                raise OvernightError(f"The store {self.path} needs an upgrade: run any overnight command that writes (e.g. overnight status) first.")
            if not applied and not self._create:  # a command that only reads adds no tables to someone else's database
                raise OvernightError(f"{self.path} is not an overnight store; nothing was changed.")
            if not applied and not self.conn.execute("select 1 from sqlite_master").fetchone():
                migrations.create(self.conn)  # a new store: made at once, without sqlite-utils
            else:
                migrations.apply(self.db)

    def _mark(self) -> None:
        """Says in the file's header that it is overnight's (`is_store`): trust and work folders leave it out."""
        if self.conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # into the file's own header now, not at the close

    def files(self) -> frozenset[Path]:
        """The store's file and those SQLite and overnight keep beside it, which change as it is written."""
        return frozenset(self.path.with_name(self.path.name + end) for end in ("", *SIDE_FILES))

    def close(self) -> None:
        self.conn.close()

    # Reads go through sqlite3 directly, rows as dicts (as sqlite-utils' query gives them).
    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict]:
        cursor = self.conn.execute(sql, list(args))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def _row(self, sql: str, args: Iterable[Any] = ()) -> dict | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    def _stream(self, sql: str, args: Iterable[Any] = ()) -> Iterator[dict]:
        """Rows as they are read: memory stays flat however long the run."""
        cursor = self.conn.execute(sql, list(args))
        names = [d[0] for d in cursor.description]
        while batch := cursor.fetchmany(500):
            for row in batch:
                yield dict(zip(names, row))

    def has_table(self, name: str) -> bool:
        return self._row("select 1 as found from sqlite_master where type = 'table' and name = ?", [name]) is not None

    # -- nights (their tables are made by overnight.night's own migrations) -------------

    def night(self, night_id: int) -> dict | None:
        return self._row("select * from nights where id = ?", [night_id])

    def latest_night(self, statuses: tuple[str, ...] | None = None) -> dict | None:
        where = f" where status in ({','.join('?' * len(statuses))})" if statuses else ""
        return self._row(f"select * from nights{where} order by id desc limit 1", list(statuses or ()))

    def night_items(self, night_id: int) -> list[dict]:
        return self._rows("select * from night_items where night_id = ? order by position", [night_id])

    def latest_run_since(self, recipe: str, since: float, pid: int | None = None) -> dict | None:
        """The recipe's latest run started since `since`; with `pid`, the latest that process started."""
        mine = " and pid = ?" if pid else ""
        return self._row(f"select * from runs where recipe = ? and started_at >= ?{mine} order by id desc limit 1",
                         [recipe, since, *([pid] if pid else [])])

    # -- runs ---------------------------------------------------------------

    def start_run(self, **fields: Any) -> int:
        fields = _scrubbed(fields)
        if fields.get("recipe_text"):
            fields["recipe_text"] = redact_toml(fields["recipe_text"])
        now = time.time()
        fields.setdefault("status", "running")
        fields.update(started_at=now, updated_at=now, pid=os.getpid(), experiments=0, usd=0.0, tokens=0, seconds=0.0)
        return self._insert("runs", fields)

    def update_run(self, run_id: int, **fields: Any) -> None:
        fields = _scrubbed(fields, self.secrets)
        fields["updated_at"] = time.time()
        self._update("runs", run_id, fields)

    # Plain SQL for the writes of every experiment: sqlite-utils' insert and update look the
    # table up first, which costs more than the write itself.
    def _insert(self, table: str, row: dict[str, Any]) -> int:
        names = ", ".join(f"[{k}]" for k in row)
        marks = ", ".join("?" * len(row))
        return self.conn.execute(f"insert into [{table}] ({names}) values ({marks})", _values(row)).lastrowid

    def _update(self, table: str, pk: int, row: dict[str, Any]) -> None:
        if row:
            sets = ", ".join(f"[{k}] = ?" for k in row)
            self.conn.execute(f"update [{table}] set {sets} where id = ?", [*_values(row), pk])

    def run(self, run_id: int) -> dict | None:
        return self._row("select * from runs where id = ?", [run_id])

    def runs(self) -> list[dict]:
        return self._rows("select * from runs order by id desc")

    def latest_run(self, recipe: str | None = None, statuses: Iterable[str] | None = None) -> dict | None:
        sql, args = "select * from runs where 1", []
        if recipe is not None:
            sql += " and recipe = ?"
            args.append(recipe)
        if statuses:
            statuses = list(statuses)
            sql += f" and status in ({','.join('?' * len(statuses))})"
            args += statuses
        return self._row(sql + " order by id desc limit 1", args)

    def claim_run(self, run_id: int, seen_pid: Any) -> bool:
        """Marks run `run_id` resumed by this process, if its pid is still `seen_pid`; False if another
        process claimed it since. One conditional write: of two `--resume` at once, one gets the run.
        It marks the run running as well, as `record.resumed` does again once the loop opens it: from
        the claim on, another command sees whose run it is (a paused one would otherwise look paused)."""
        with self.transaction():
            claimed = self.conn.execute(
                "update runs set pid = ?, status = 'running', stop_reason = null, control = null, ended_at = null, "
                "updated_at = ? where id = ? and pid is ?", [os.getpid(), time.time(), run_id, seen_pid]).rowcount
        return claimed == 1

    def control(self, run_id: int) -> str | None:
        row = self._row("select control from runs where id = ?", [run_id])
        return row["control"] if row else None

    def set_control(self, run_id: int, control: str | None) -> None:
        self._update("runs", run_id, {"control": control})

    # -- candidates and experiments -------------------------------------------

    def put_candidate(self, digest: str, view: str) -> None:
        if len(view) < PARTS_FROM:
            self.conn.execute("insert or ignore into candidates (digest, view) values (?, ?)", [digest, view])
            return
        if self.has_candidate(digest):
            return
        last_view, last_parts, last_names = self._last
        parts = split_like(view, last_view, last_parts)
        known = dict(zip(last_parts, last_names))  # the parts taken from the last view are named already
        names = [known.get(part) or name(part) for part in parts]  # in order, a part that comes twice named twice
        new = {key: part for key, part in zip(names, parts) if key not in self._parts}  # most are the parent's
        self.conn.executemany("insert or ignore into parts (digest, text) values (?, ?)", new.items())
        self.conn.execute("insert into candidates (digest, parts) values (?, ?)", [digest, json.dumps(names)])
        self._parts.update(names)
        self._last = view, parts, names

    def has_candidate(self, digest: str) -> bool:
        return self.conn.execute("select 1 from candidates where digest = ?", [digest]).fetchone() is not None

    def candidate(self, digest: str) -> str | None:
        row = self._row("select view, parts from candidates where digest = ?", [digest])
        if row is None or row["parts"] is None:
            return row["view"] if row else None
        texts = self.conn.execute("select p.text from json_each(?) j left join parts p on p.digest = j.value "
                                  "order by j.key", [row["parts"]]).fetchall()
        if any(text is None for (text,) in texts):
            raise OvernightError(f"A part of the view {digest[:12]} is missing from the store {self.path}.")
        return "".join(text for (text,) in texts)

    def record_experiment(self, run_id: int, examples: list[ExampleResult] = (), **fields: Any) -> int:
        with self.transaction():  # an experiment and its examples, or neither (a SIGKILL may come any time)
            return self._experiment(run_id, examples, fields)

    def _experiment(self, run_id: int, examples: list[ExampleResult], fields: dict[str, Any]) -> int:
        for key in ("samples", "components", "meta"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = json.dumps(fields[key])
        exp_id = self._insert("experiments", dict(run_id=run_id, **_scrubbed(fields, self.secrets)))
        self._insert_examples(exp_id, examples)
        return exp_id

    def commit_experiment(self, run_id: int, examples: list[ExampleResult] = (), calls: Iterable[LLMCall] = (),
                          run: Callable[[int], dict] | None = None, view: str | None = None, **fields: Any) -> int:
        """An experiment, its candidate's `view`, its examples and model calls, and the run's row
        that follows from it (`run(exp_id)`: its best, its baseline, its totals), in one
        transaction: a kill leaves all of it or none of it, and the loop pays one commit."""
        with self.transaction():
            if view is not None and fields.get("candidate"):
                self.put_candidate(fields["candidate"], view)
            exp_id = self._experiment(run_id, examples, fields)
            for call in calls:
                self.record_llm_call(call, run_id=run_id, experiment_id=exp_id)
            if run is not None:
                self.update_run(run_id, **run(exp_id))
        return exp_id

    def at_once(self, write: Callable[[], object]) -> bool:
        """Runs `write` if the store can be written without waiting for another process's write;
        False, with nothing written, if it cannot: for work done while a command runs, which must
        not hold up seeing the command's end."""
        self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            write()
            return True
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):  # and their variants
                return False
            raise
        finally:
            self.conn.execute("PRAGMA busy_timeout = 10000")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All of the writes inside, or none (a savepoint inside another transaction). Plain SQL:
        sqlite-utils' `atomic` would import it, and numpy with it, on a run's path."""
        conn = self.conn
        name = None
        if conn.in_transaction:
            name = f"overnight_{next(_savepoints)}"
            conn.execute(f"savepoint {name}")
        else:
            conn.execute("begin")
        try:
            yield
            conn.execute(f"release {name}" if name else "commit")
        except BaseException:
            self._parts.clear()  # parts written inside are gone with what is rolled back
            if conn.in_transaction:
                conn.execute(f"rollback to {name}" if name else "rollback")
                if name:
                    conn.execute(f"release {name}")
            raise

    def _insert_examples(self, exp_id: int, examples: Iterable[ExampleResult]) -> None:
        rows = _example_rows(exp_id, examples, self.secrets)
        if rows:
            names = ", ".join(f"[{k}]" for k in rows[0])
            self.conn.executemany(f"insert into example_results ({names}) values ({', '.join('?' * len(rows[0]))})",
                                  [_values(r) for r in rows])

    # -- applies: journaled, so a kill in the middle is finished or rolled back later ----

    def begin_apply(self, **fields: Any) -> int:
        return self._insert("applies", dict(fields, state="begun", created_at=time.time()))

    def finish_apply(self, apply_id: int, *, fingerprint: str, review: dict) -> None:
        """The review, the run's new fingerprint and the journal's end: all of them or none."""
        with self.db.atomic():
            self.add_review(**review)
            self.update_run(review["run_id"], source_fingerprint=fingerprint)
            self.end_apply(apply_id, "finished")

    def end_apply(self, apply_id: int, state: str) -> None:
        self.db.execute("update applies set state = ? where id = ?", [state, apply_id])

    def unfinished_applies(self) -> list[dict]:
        return self._rows("select * from applies where state = 'begun' order by id")

    def update_experiment(self, exp_id: int, examples: list[ExampleResult] = (), **fields: Any) -> None:
        for key in ("samples", "components", "meta"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = json.dumps(fields[key])
        fields = _scrubbed(fields, self.secrets)
        with self.transaction():
            self._update("experiments", exp_id, fields)
            self._insert_examples(exp_id, examples)

    def experiments(self, run_id: int) -> list[dict]:
        return self._rows("select * from experiments where run_id = ? order by seq", [run_id])

    def experiment(self, exp_id: int) -> dict | None:
        return self._row("select * from experiments where id = ?", [exp_id])

    def experiment_at(self, run_id: int, seq: int) -> dict | None:
        return self._row("select * from experiments where run_id = ? and seq = ?", [run_id, seq])

    def example_results(self, exp_id: int) -> list[dict]:
        return self._rows("select * from example_results where experiment_id = ? order by id", [exp_id])

    def counts(self, run_id: int) -> dict[str, int]:
        rows = self._rows("select status, count(*) n from experiments where run_id = ? group by status", [run_id])
        return {r["status"]: r["n"] for r in rows}

    def attempts(self, run_id: int) -> list[Attempt]:
        return [_attempt(row) for row in self.experiments(run_id)]

    # -- LLM calls ------------------------------------------------------------

    def record_llm_call(self, call: LLMCall, *, run_id: int | None, experiment_id: int | None = None, cache_key: str = "") -> None:
        row = asdict(call)
        row["messages"] = json.dumps(row["messages"])
        row = _scrubbed(row, self.secrets)
        row.update(run_id=run_id, experiment_id=experiment_id, cache_key=cache_key or call.cache_key, created_at=time.time(), cached=int(call.cached))
        self._insert("llm_calls", row)

    def cached_response(self, cache_key: str) -> dict | None:
        return self._row(
            "select * from llm_calls where cache_key = ? and error = '' and cached = 0 order by id desc limit 1", [cache_key])

    def llm_calls(self, run_id: int, experiment_id: int | None = None) -> list[dict]:
        if experiment_id is None:
            return self._rows("select * from llm_calls where run_id = ? order by id", [run_id])
        return self._rows("select * from llm_calls where experiment_id = ? order by id", [experiment_id])

    # -- reviews and notes ----------------------------------------------------

    def add_review(self, **fields: Any) -> int:
        fields["created_at"] = time.time()
        return self._insert("reviews", fields)

    def reviews(self, run_id: int) -> list[dict]:
        return self._rows("select * from reviews where run_id = ? order by id", [run_id])

    def add_note(self, recipe: str, text: str, kind: str = "steer", run_id: int | None = None) -> int:
        return self._insert(
            "notes", {"recipe": recipe, "run_id": run_id, "kind": kind, "text": scrub(text), "created_at": time.time()})

    def notes(self, recipe: str) -> list[dict]:
        return self._rows("select * from notes where recipe = ? order by id", [recipe])

    # -- checks and contributions (trusting the gains) ------------------------

    def record_check(self, recipe: str, digest: str, verdict: str, report: dict) -> int:
        row = {"recipe": recipe, "digest": digest, "verdict": verdict, "report": scrub(json.dumps(report)), "created_at": time.time()}
        return self.db["checks"].insert(row).last_pk

    def latest_check(self, recipe: str, digest: str | None = None) -> dict | None:
        sql, args = "select * from checks where recipe = ?", [recipe]
        if digest is not None:
            sql, args = sql + " and digest = ?", args + [digest]
        return self._row(sql + " order by id desc limit 1", args)

    def save_contributions(self, run_id: int, rows: list[dict]) -> None:
        """Replaces what an earlier `overnight explain` of this run found."""
        now = time.time()
        with self.db.conn:
            self.db.execute("delete from contributions where run_id = ?", [run_id])
            if rows:
                self.db["contributions"].insert_all({**_scrubbed(r), "run_id": run_id, "created_at": now} for r in rows)

    def contributions(self, run_id: int) -> list[dict]:
        return self._rows("select * from contributions where run_id = ? order by id", [run_id])


    # -- what the front ends read: light rows, pages and cheap polls ----------
    # A run may hold 100,000 experiments: these read only the columns shown, a page or a
    # stream of rows at a time, and every one is answered by an index (tests/test_query_plans.py).

    def runs_stamp(self) -> tuple[int, int, float]:
        """(count, highest id, last update) of the runs: what changed since the last look."""
        row = self.conn.execute("select (select count(*) from runs), (select coalesce(max(id), 0) from runs), "
                                "(select coalesce(max(updated_at), 0) from runs)").fetchone()
        return row[0], row[1], row[2]

    def runs_overview(self) -> list[dict]:
        """The runs, newest first, without their recipe text and config."""
        return self._rows(f"select {_RUN_OVERVIEW} from runs order by id desc")

    def max_experiment_id(self, run_id: int) -> int:
        # One step down the (run_id, id, ...) index: the TUI asks twice a second.
        row = self.conn.execute("select id from experiments where run_id = ? order by id desc limit 1", [run_id]).fetchone()
        return row[0] if row else 0

    def experiments_after(self, run_id: int, after_id: int) -> list[dict]:
        """Light rows (no diffs, traces or views) of the experiments recorded after `after_id`."""
        return self._rows(f"select {_LIGHT} from experiments where run_id = ? and id > ? order by id", [run_id, after_id])

    def experiments_light(self, ids: list[int]) -> list[dict]:
        """Light rows of these experiments (the loop updates some after recording them; the TUI shows a page)."""
        if not ids:
            return []
        return self._rows(f"select {_LIGHT} from experiments where id in ({','.join('?' * len(ids))})", ids)

    def experiments_newest(self, run_id: int, limit: int) -> list[dict]:
        """Light rows of the run's last `limit` experiments, newest first: what a table shows first."""
        return self._rows(f"select {_LIGHT} from experiments where run_id = ? order by seq desc limit ?", [run_id, limit])

    def experiment_points(self, run_id: int, after_id: int = 0, codes: Sequence[str] = ()) -> Iterator[list[tuple]]:
        """Batches of (id, seq, status, score, delta) of each experiment recorded after `after_id`, by id.

        Every column is in the (run_id, id, ...) index, so no row is opened: the TUI's plot and
        table of 100,000 experiments come from a few megabytes. With `codes`, a status among them
        comes as its index there, a small number Python need not make anew for each row, as it
        must a string: 100,000 rows in about 60 ms instead of 100.
        """
        status = "status"
        if codes:
            status = "case status " + " ".join(f"when ? then {i}" for i in range(len(codes))) + " else status end"
        cursor = self.conn.execute(f"select id, seq, {status}, score, delta from experiments where run_id = ? and id > ? "
                                   "order by id", [*codes, run_id, after_id])
        while batch := cursor.fetchmany(4096):
            yield batch

    def experiment_rows(self, run_id: int, columns: Iterable[str], last: int | None = None) -> Iterator[dict]:
        """These columns of the run's experiments in order, streamed; with `last`, its last `last` only."""
        names = ", ".join(f"[{_column(c)}]" for c in columns)
        sql = f"select {names} from experiments where run_id = ? order by seq"
        if last is None:
            return self._stream(sql, [run_id])
        return iter(self._rows(sql + " desc limit ?", [run_id, last])[::-1])

    def experiment_count(self, run_id: int) -> int:
        return self.conn.execute("select count(*) from experiments where run_id = ?", [run_id]).fetchone()[0]

    def experiment_reviews(self, exp_id: int) -> list[dict]:
        return self._rows("select * from reviews where experiment_id = ? order by id", [exp_id])

    def add_remeasure(self, *, run_id: int, experiment_id: int, recipe: str, samples: list[float]) -> int:
        """Scores measured again on request, kept as a review so they sit beside the experiment."""
        return self.add_review(run_id=run_id, experiment_id=experiment_id, recipe=recipe, action="remeasured",
                               note=json.dumps(samples))

    def remeasures(self, exp_id: int) -> list[float]:
        rows = self._rows("select note from reviews where experiment_id = ? and action = 'remeasured' order by id", [exp_id])
        return [float(x) for r in rows for x in json.loads(r["note"] or "[]")]


# What a list of runs or a live table needs; diffs, traces and views stay in the store until opened.
_RUN_OVERVIEW = ("id, recipe, recipe_path, status, stop_reason, control, goal, best_experiment, baseline_score, best_score, "
                 "holdout_baseline, holdout_best, experiments, usd, tokens, seconds, started_at, ended_at, pid")
_LIGHT = ("id, run_id, seq, status, substr(reason, 1, 200) as reason, score, holdout_score, delta, "
          "substr(rationale, 1, 200) as rationale")


def _column(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"not a column name: {name!r}")
    return name


def has_runs(path: Path) -> bool:
    """True once a run has created the store at `path` and its tables (not while it is being made).

    Read without opening a Store: a store being created must not be migrated by a reader.
    """
    if not Path(path).exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return bool(conn.execute("select 1 from sqlite_master where name = 'runs'").fetchone())
        finally:
            conn.close()
    except sqlite3.Error:
        return True  # not a store at all: opening it says so in a sentence

# Text the store keeps that may quote the environment (a command's output, a model's reply).
# Candidate views are stored exactly as proposed: apply must write them back byte for byte.
_FREE_TEXT = ("reason", "rationale", "trace", "agent_trace", "error", "meta", "diff", "config",
              "stop_reason", "messages", "response")


def _scrubbed(fields: dict[str, Any], secrets: list[str] | None = None) -> dict[str, Any]:
    """Secrets out of free text: values of environment variables named like keys or tokens."""
    secrets = secret_values() if secrets is None else secrets
    if not secrets:
        return fields
    out = dict(fields)
    for key in _FREE_TEXT:
        value = out.get(key)
        if isinstance(value, str) and value:
            out[key] = scrub(value, secrets)
    return out


def _example_rows(exp_id: int, examples: Iterable[ExampleResult], secrets: list[str] | None = None) -> list[dict]:
    secrets = secret_values() if secrets is None else secrets
    return [
        dict(experiment_id=exp_id, example_id=e.id, split=e.split, input=scrub(e.input, secrets),
             output=scrub(e.output, secrets), expected=e.expected, score=e.score, feedback=scrub(e.feedback, secrets))
        for e in examples
    ]


def _values(row: dict[str, Any]) -> list[Any]:
    # As sqlite-utils would store them: tables and lists as JSON.
    return [json.dumps(v) if isinstance(v, (dict, list, tuple)) else v for v in row.values()]


def _attempt(row: dict) -> Attempt:
    return Attempt(
        seq=row["seq"], status=row["status"], reason=row["reason"] or "", rationale=row["rationale"] or "",
        score=row["score"], delta=row["delta"], trace=row["trace"] or "",
        meta=json.loads(row["meta"]) if row["meta"] else {},
    )


def loads(value: str | None, default: Any = None) -> Any:
    return json.loads(value) if value else default
