"""The store: one SQLite file in WAL mode, migrated on open, with the names other tools rely on,
the recipe's full text, and never a secret."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from overnight.core import plugins
from overnight.core.contracts import STATUSES, LLMCall
from overnight.core.errors import OvernightError
from overnight.core.store import Store, migrations
from tests.data.core.kit import no_traceback, recipe, rows


def columns(db: Path, table: str) -> set[str]:
    return {r["name"] for r in rows(db, f"pragma table_info({table})")}


@pytest.fixture
def probe_plugins(monkeypatch):
    """The test plugins of tests/data/core/probe.py, loaded the way a user would add one."""
    monkeypatch.setenv("OVERNIGHT_PLUGINS", "tests.data.core.probe")
    plugins.registry.cache_clear()
    yield
    plugins.registry.cache_clear()


def test_wal_busy_timeout_and_migrations(workspace):
    store = Store()
    assert store.path == workspace / ".overnight" / "overnight.db"
    assert store.db.execute("pragma busy_timeout").fetchone()[0] == 10000
    store.close()
    db = workspace / ".overnight" / "overnight.db"
    assert rows(db, "pragma journal_mode")[0]["journal_mode"] == "wal"
    applied = [r["name"] for r in rows(db, "select name from _sqlite_migrations where migration_set = 'overnight'")]
    assert applied == [m.name for m in migrations._migrations]
    # Opening again applies nothing twice.
    Store(db).close()
    assert len(rows(db, "select * from _sqlite_migrations")) == len(applied)


def test_the_fixed_names_of_the_design(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n", "CRASH\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    db = workspace / ".overnight" / "overnight.db"
    assert {"id", "recipe", "status", "stop_reason", "best_experiment"} <= columns(db, "runs")
    assert {"id", "run_id", "seq", "status", "score", "rationale", "candidate"} <= columns(db, "experiments")
    assert {"candidates", "example_results", "llm_calls", "reviews", "notes"} <= {
        r["name"] for r in rows(db, "select name from sqlite_master where type = 'table'")}
    run = rows(db, "select id, recipe, status, stop_reason, best_experiment from runs")[0]
    assert run["recipe"] == "r" and run["status"] == "finished"
    best = rows(db, "select seq, candidate, score from experiments where id = ?", [run["best_experiment"]])[0]
    assert best["seq"] == 1 and best["score"] == 12
    assert rows(db, "select view from candidates where digest = ?", [best["candidate"]])[0]["view"] == "hello world\n"
    assert {r["status"] for r in rows(db, "select status from experiments")} <= set(STATUSES)


def test_a_run_records_the_recipe_text_and_digest(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    text = (folder / "recipe.toml").read_text()
    assert cli("run", folder, "--yes").exit_code == 0
    run = rows(workspace / ".overnight" / "overnight.db", "select * from runs")[0]
    assert run["recipe_text"] == text
    assert run["recipe_digest"] == hashlib.sha256(text.encode()).hexdigest()
    assert run["recipe_path"] == str(folder / "recipe.toml")
    config = json.loads(run["config"])
    assert config["metrics"][0]["kind"] == "command" and config["budget"]["experiments"] == 100


def test_db_option_and_environment_variable(workspace, cli, monkeypatch):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes", "--db", workspace / "given.db").exit_code == 0
    assert (workspace / "given.db").exists() and not (workspace / ".overnight").exists()
    monkeypatch.setenv("OVERNIGHT_DB", str(workspace / "from-env.db"))
    assert cli("run", folder, "--yes").exit_code == 0
    assert len(rows(workspace / "from-env.db", "select * from runs")) == 1
    assert not (workspace / ".overnight").exists()
    log = cli("log")
    assert "Run 1 of 'r'" in log.output


def test_a_store_from_a_newer_version_is_refused_and_left_alone(workspace, cli):
    db = workspace / "store.db"
    Store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("insert into _sqlite_migrations (migration_set, name, applied_at) "
                      "values ('overnight', '999_from_the_future', '2099-01-01')")
    conn.close()
    before = db.read_bytes()

    with pytest.raises(OvernightError) as err:
        Store(db)
    assert "written by a newer version of overnight (migration 999_from_the_future)" in err.value.message
    result = cli("status", "--db", db)
    assert result.exit_code != 0
    assert "newer version of overnight" in result.output and "Nothing was changed" in result.output
    assert no_traceback(result.output)
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes", "--db", db).exit_code != 0
    assert db.read_bytes() == before
    assert len(rows(db, "select * from _sqlite_migrations")) == len(migrations._migrations) + 1


def test_reading_commands_on_an_empty_workspace(workspace, cli):
    status = cli("status")
    assert status.exit_code == 0 and "No runs in" in status.output
    log = cli("log")
    assert log.exit_code != 0 and "No overnight store at" in log.output and no_traceback(log.output)
    assert not (workspace / ".overnight").exists()  # reading commands create nothing


def test_a_folder_other_than_the_runs_says_each_folder_keeps_its_own_store(workspace, cli, monkeypatch):
    """Not "start a run first" for someone who ran one elsewhere: where their runs are, and --db."""
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    monkeypatch.chdir(folder)
    here = folder / ".overnight" / "overnight.db"
    elsewhere = ("Each folder keeps its own store, so run this in the folder you ran overnight from (or pass --db FILE), "
                 "or start a run with `overnight run RECIPE` or `overnight demo`.")

    for args in (("log",), ("apply", "1:1")):
        result = cli(*args)
        assert result.exit_code == 1 and result.output == f"Error: No overnight store at {here}. {elsewhere}\n", args
    assert cli("status").output == f"No runs in {here} yet. {elsewhere}\n"
    assert not here.parent.exists()
    assert cli("apply", "1:1", "--db", workspace / ".overnight" / "overnight.db").exit_code == 0  # the way it names


SECRET = "sk-secret-123456"
IN_RECIPE = "sk-recipe-abcdef"


def test_secrets_never_reach_the_store(workspace, cli, probe_plugins, monkeypatch):
    monkeypatch.setenv("OVERNIGHT_TEST_API_KEY", SECRET)
    views = [{"view": "hello world\n", "rationale": f"tried with {SECRET}"}, {"view": "CRASH\n", "rationale": "crash"}]
    folder = recipe(
        workspace / "r",
        metric='kind = "command"\nrun = "echo using $OVERNIGHT_TEST_API_KEY; sh {recipe}/score.sh {file}"\n'
               'env_passthrough = ["OVERNIGHT_TEST_API_KEY"]',  # a metric sees no secret unless passed through
        agent=f'kind = "probe"\nfile = "views.jsonl"\nlog = "contexts.jsonl"\napi_key = "{IN_RECIPE}"',
        files={"views.jsonl": "".join(json.dumps(v) + "\n" for v in views)},
    )
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    db = workspace / ".overnight" / "overnight.db"
    store = Store(db)
    run_id = store.latest_run()["id"]
    store.record_llm_call(LLMCall("agent", "some-model", [{"role": "user", "content": f"key {SECRET}"}], response=SECRET),
                          run_id=run_id)
    store.add_note("r", f"remember {SECRET}")
    store.close()

    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith("overnight.db"))
    assert SECRET.encode() not in raw
    assert IN_RECIPE.encode() not in raw
    # What was around the secrets is kept, masked.
    exps = rows(db, "select * from experiments order by seq")
    assert "using ***" in exps[1]["trace"] and exps[1]["rationale"] == "tried with ***"
    run = rows(db, "select * from runs")[0]
    assert 'api_key = "***"' in run["recipe_text"]
    assert json.loads(run["config"])["agent"]["api_key"] == "***"
    # The recipe text stays a recipe: review commands rebuild the surface from it.
    assert cli("diff", "1").exit_code == 0


# Opens a store as the reading commands and the TUI do, reads, and says what was imported.
OPEN_PROBE = """
import sys
from overnight.core.store import Store
store = Store(sys.argv[1], readonly=sys.argv[2] == "ro")
run = store.latest_run()
if run:
    store.experiments(run["id"]), store.runs_overview(), list(store.experiment_points(run["id"]))
store.close()
print("@@", sorted(m for m in ("sqlite_utils", "numpy") if m in sys.modules))
"""


def test_an_up_to_date_store_is_read_without_sqlite_utils(workspace, cli):
    import subprocess
    import sys

    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    db = workspace / ".overnight" / "overnight.db"

    def imported(path, mode: str) -> str:
        done = subprocess.run([sys.executable, "-c", OPEN_PROBE, str(path), mode], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.rsplit("@@", 1)[1].strip()

    assert imported(db, "ro") == "[]"
    assert imported(db, "rw") == "[]"
    assert imported(workspace / "new.db", "rw") == "[]"  # a new store is made from core/schema.py


def shape(conn: sqlite3.Connection) -> dict:
    """Every table's columns (in order, with type, key and default), foreign keys and indexes
    (name, uniqueness, columns): what a store is, whatever the text of its statements."""
    tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' order by name")]
    return {t: {"columns": conn.execute(f"pragma table_xinfo([{t}])").fetchall(),
                "foreign keys": conn.execute(f"pragma foreign_key_list([{t}])").fetchall(),
                "indexes": sorted((name, unique, origin, [c[2] for c in conn.execute(f"pragma index_info([{name}])")])
                                  for _, name, unique, origin, _ in conn.execute(f"pragma index_list([{t}])"))}
            for t in tables}


def migrated(path: Path, steps=None) -> sqlite3.Connection:
    """A database brought up to date by sqlite-utils' migrations, step by step."""
    import sqlite_utils

    conn = sqlite3.connect(path, isolation_level=None)
    (steps or migrations).apply(sqlite_utils.Database(conn))
    return conn


def test_a_new_store_has_the_tables_and_indexes_its_migrations_make(workspace):
    Store(workspace / "new.db").close()
    made = sqlite3.connect(workspace / "new.db")
    stepped = migrated(workspace / "stepped.db")
    assert shape(made) == shape(stepped)
    assert made.execute("select migration_set, name from _sqlite_migrations order by id").fetchall() == \
        stepped.execute("select migration_set, name from _sqlite_migrations order by id").fetchall()
    assert "runs" in shape(made) and len(shape(made)) == 12


def test_a_store_made_at_once_takes_a_later_migration(workspace):
    """The steps are recorded as sqlite-utils records them: a step added later is applied once."""
    from overnight.core.store import Migrations

    Store(workspace / "new.db").close()
    later = Migrations("overnight")
    for step in migrations._migrations:
        later(name=step.name)(step.fn)
    later(name="005_a_later_step")(lambda db: db["runs"].add_column("later", str))
    conn = migrated(workspace / "new.db", later)
    assert "later" in [c[1] for c in conn.execute("pragma table_info(runs)")]
    assert [r[0] for r in conn.execute("select name from _sqlite_migrations order by id")] == \
        [step.name for step in later._migrations]
