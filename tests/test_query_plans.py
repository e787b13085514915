"""Every query the store reads with is answered by an index: none reads a whole table of experiments.

A run may hold 100,000 experiments, and the TUI asks twice a second. Each read method of
the Store is called on a real store while SQLite traces the statements it runs; each
statement's `EXPLAIN QUERY PLAN` must not SCAN experiments (or the tables that grow with
them), nor sort what it reads of them. A read method added later without a call here fails the last test. (No ANALYZE: a store
never runs it, so its planner works without statistics, as here.)
"""

from __future__ import annotations

import inspect
import sqlite3

import pytest

from overnight.core.contracts import STATUSES, ExampleResult, LLMCall
from overnight.core.store import Store
from overnight.night.state import Nights

# Tables that grow with every experiment; runs, notes and checks grow with what a person does.
GROWING = ("experiments", "example_results", "llm_calls", "reviews", "candidates", "contributions")

# Methods that write (or open and close, or name the store's files): their statements are not reads.
WRITES = {"start_run", "update_run", "set_control", "put_candidate", "record_experiment", "update_experiment",
          "record_llm_call", "add_review", "add_note", "record_check", "save_contributions", "add_remeasure",
          "close", "db", "begin_apply", "end_apply", "finish_apply", "commit_experiment", "transaction", "files", "at_once",
          "claim_run"}


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store.db")
    run = store.start_run(recipe="r", recipe_text="", config="{}", goal="minimize")
    for seq in range(30):
        store.put_candidate(f"d{seq}", f"view {seq}")
        exp = store.record_experiment(
            run, [ExampleResult(id=f"e{seq}", score=1.0, output="o", expected="o")], seq=seq,
            candidate=f"d{seq}", status="keep" if seq % 7 == 0 else "discard", score=float(seq), delta=seq - 1.0,
            reason="why", rationale="what", samples=[float(seq)])
        store.record_llm_call(LLMCall(role="agent", model="m", messages=[], response="r", cache_key=f"k{seq}"),
                              run_id=run, experiment_id=exp)
    store.add_review(run_id=run, experiment_id=exp, recipe="r", action="starred", note="")
    store.add_remeasure(run_id=run, experiment_id=exp, recipe="r", samples=[1.0])
    store.add_note("r", "a note", run_id=run)
    store.set_control(run, "pause")
    store.record_check("r", "digest", "ok", {})
    store.save_contributions(run, [{"experiment_id": exp, "seq": 29, "rationale": "what", "gain": 1.0}])
    yield store
    store.close()


def reads(store: Store) -> dict[str, object]:
    """Every read method of the Store, called as the CLI and the TUI call it."""
    exp = store.experiment_at(1, 29)["id"]
    return {
        "run": lambda: store.run(1),
        "runs": store.runs,
        "latest_run": lambda: (store.latest_run(), store.latest_run("r", statuses=["running", "stopped"])),
        "control": lambda: store.control(1),
        "candidate": lambda: store.candidate("d3"),
        "has_candidate": lambda: store.has_candidate("d3"),
        "experiments": lambda: store.experiments(1),
        "experiment": lambda: store.experiment(exp),
        "experiment_at": lambda: store.experiment_at(1, 3),
        "example_results": lambda: store.example_results(exp),
        "counts": lambda: store.counts(1),
        "attempts": lambda: store.attempts(1),
        "cached_response": lambda: store.cached_response("k3"),
        "llm_calls": lambda: (store.llm_calls(1), store.llm_calls(1, experiment_id=exp)),
        "reviews": lambda: store.reviews(1),
        "notes": lambda: store.notes("r"),
        "latest_check": lambda: (store.latest_check("r"), store.latest_check("r", "digest")),
        "contributions": lambda: store.contributions(1),
        "runs_stamp": store.runs_stamp,
        "runs_overview": store.runs_overview,
        "max_experiment_id": lambda: store.max_experiment_id(1),
        "experiments_after": lambda: store.experiments_after(1, exp - 3),
        "experiments_light": lambda: store.experiments_light([exp, exp - 1]),
        "experiments_newest": lambda: store.experiments_newest(1, 10),
        "experiment_points": lambda: list(store.experiment_points(1, codes=STATUSES)),
        "experiment_rows": lambda: (list(store.experiment_rows(1, ["seq", "status", "reason"])),
                                    list(store.experiment_rows(1, ["seq", "score"], last=5))),
        "experiment_count": lambda: store.experiment_count(1),
        "experiment_reviews": lambda: store.experiment_reviews(exp),
        "remeasures": lambda: store.remeasures(exp),
        "has_table": lambda: store.has_table("nights"),
        "unfinished_applies": store.unfinished_applies,
        "latest_run_since": lambda: (store.latest_run_since("r", 0.0), store.latest_run_since("r", 0.0, pid=7)),
        # A night's tables are made by overnight.night's own migrations.
        "night": lambda: (Nights(store), store.night(1)),
        "latest_night": lambda: (Nights(store), store.latest_night(), store.latest_night(("running",))),
        "night_items": lambda: (Nights(store), store.night_items(1)),
    }


def scans(conn: sqlite3.Connection, sql: str) -> list[str]:
    """The steps of the plan that read a growing table from end to end, or sort what they read of it
    (a sort reads every row before the first comes out: nothing would stream)."""
    plan = [row[3] for row in conn.execute("explain query plan " + sql)]
    growing = any(step.split()[0] in ("SCAN", "SEARCH") and step.split()[1] in GROWING for step in plan)
    return [step for step in plan
            if (step.startswith("SCAN") and step.split()[1] in GROWING) or (growing and "TEMP B-TREE" in step)]


def test_no_read_scans_the_experiments(store):
    statements: list[tuple[str, str]] = []
    for name, call in reads(store).items():
        store.conn.set_trace_callback(lambda sql, name=name: statements.append((name, sql)))
        result = call()
        store.conn.set_trace_callback(None)
        assert result is not None, name  # each read found something: the plan is the one a real store runs
    selects = [(name, sql) for name, sql in statements if sql.lstrip().lower().startswith("select")]
    assert {name for name, _ in selects} >= set(reads(store)) - {"attempts"}  # attempts reads through experiments
    bad = {f"{name}: {sql}": steps for name, sql in selects if (steps := scans(store.conn, sql))}
    assert bad == {}


def test_the_test_sees_a_scan_when_there_is_one(store):
    assert scans(store.conn, "select * from experiments where reason = 'why'") == ["SCAN experiments"]
    assert scans(store.conn, "select count(*) from experiments") != []  # a whole index is read too
    assert scans(store.conn, "select * from experiments where run_id = 1 and id > 3") == []
    assert scans(store.conn, "select * from experiments where run_id = 1 order by score") == ["USE TEMP B-TREE FOR ORDER BY"]


def test_every_read_method_is_checked(store):
    public = {name for name, _ in inspect.getmembers(Store) if not name.startswith("_")}
    assert public - WRITES - set(reads(store)) == set(), "a read method of the Store is not in reads() above"


def test_a_store_made_before_the_indexes_gains_them_when_opened(tmp_path):
    db = tmp_path / "store.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    indexes = [r[0] for r in conn.execute("select name from sqlite_master where type = 'index' and sql like "
                                          "'%run_id%id%seq%status%score%delta%'")]
    assert indexes
    with conn:
        conn.execute("delete from _sqlite_migrations where name = '003_indexes_for_reading'")
        for name in ("idx_experiments_run_id_id_seq_status_score_delta", "idx_llm_calls_experiment_id",
                     "idx_reviews_experiment_id", "idx_reviews_run_id", "idx_runs_updated_at"):
            conn.execute(f"drop index {name}")
    conn.close()

    store = Store(db)
    plan = [r[3] for r in store.conn.execute("explain query plan select id from experiments where run_id = 1 "
                                             "order by id desc limit 1")]
    assert any("COVERING INDEX idx_experiments_run_id_id_seq_status_score_delta" in step for step in plan), plan
    store.close()
