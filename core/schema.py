"""The store's schema as its migrations leave it (core/store.py), for making a new store at once.

Applying the migrations means importing sqlite-utils, and numpy with it: a tenth of a second
or more, paid by a person's first run in a new folder. A new, empty store is made from these
statements instead, in one transaction, and its migrations are recorded as applied, as
sqlite-utils records them; a store that has some of them gets the rest through sqlite-utils.
tests/test_store.py checks these tables and indexes against the ones the migrations make: a new
migration goes here too.
"""

from __future__ import annotations

TABLES = {
    "_sqlite_migrations": '"id" INTEGER PRIMARY KEY, "migration_set" TEXT, "name" TEXT, "applied_at" TEXT',
    "runs": '"id" INTEGER PRIMARY KEY, "recipe" TEXT, "recipe_path" TEXT, "recipe_text" TEXT, "recipe_digest" TEXT, '
            '"config" TEXT, "status" TEXT, "stop_reason" TEXT, "control" TEXT, "baseline_experiment" INTEGER, '
            '"best_experiment" INTEGER, "baseline_score" REAL, "best_score" REAL, "noise" REAL, "goal" TEXT, '
            '"holdout_baseline" REAL, "holdout_best" REAL, "source_path" TEXT, "source_fingerprint" TEXT, '
            '"experiments" INTEGER, "usd" REAL, "tokens" INTEGER, "seconds" REAL, "started_at" REAL, '
            '"updated_at" REAL, "ended_at" REAL, "pid" INTEGER, "confirmed_baseline" REAL, "confirmed_best" REAL, '
            '"confirmed_holdout_baseline" REAL, "confirmed_holdout_best" REAL, "confirmation" TEXT, '
            '"confirmed_held" INTEGER',
    "candidates": '"digest" TEXT PRIMARY KEY, "view" TEXT, "parts" TEXT',
    "experiments": '"id" INTEGER PRIMARY KEY, "run_id" INTEGER REFERENCES "runs"("id"), "seq" INTEGER, '
                   '"parent" INTEGER, "candidate" TEXT, "status" TEXT, "reason" TEXT, "score" REAL, "samples" TEXT, '
                   '"components" TEXT, "holdout_score" REAL, "delta" REAL, "rationale" TEXT, "diff" TEXT, '
                   '"trace" TEXT, "agent_trace" TEXT, "meta" TEXT, "error" TEXT, "started_at" REAL, "seconds" REAL, '
                   '"cost_usd" REAL, "tokens" INTEGER',
    "example_results": '"id" INTEGER PRIMARY KEY, "experiment_id" INTEGER, "example_id" TEXT, "split" TEXT, '
                       '"input" TEXT, "output" TEXT, "expected" TEXT, "score" REAL, "feedback" TEXT',
    "llm_calls": '"id" INTEGER PRIMARY KEY, "run_id" INTEGER, "experiment_id" INTEGER, "role" TEXT, "model" TEXT, '
                 '"messages" TEXT, "response" TEXT, "prompt_tokens" INTEGER, "completion_tokens" INTEGER, '
                 '"cost_usd" REAL, "seconds" REAL, "cached" INTEGER, "error" TEXT, "cache_key" TEXT, '
                 '"created_at" REAL',
    "reviews": '"id" INTEGER PRIMARY KEY, "run_id" INTEGER, "experiment_id" INTEGER, "recipe" TEXT, "action" TEXT, '
               '"note" TEXT, "path" TEXT, "backup" TEXT, "previous" TEXT, "created_at" REAL',
    "notes": '"id" INTEGER PRIMARY KEY, "recipe" TEXT, "run_id" INTEGER, "kind" TEXT, "text" TEXT, "created_at" REAL',
    "checks": '"id" INTEGER PRIMARY KEY, "recipe" TEXT, "digest" TEXT, "verdict" TEXT, "report" TEXT, '
              '"created_at" REAL',
    "contributions": '"id" INTEGER PRIMARY KEY, "run_id" INTEGER, "experiment_id" INTEGER, "seq" INTEGER, '
                     '"rationale" TEXT, "gain" REAL, "best_score" REAL, "score_without" REAL, "contribution" REAL, '
                     '"bar" REAL, "status" TEXT, "reason" TEXT, "created_at" REAL',
    "applies": '"id" INTEGER PRIMARY KEY, "run_id" INTEGER, "experiment_id" INTEGER, "path" TEXT, "backup" TEXT, '
               '"tmp" TEXT, "old_digest" TEXT, "new_digest" TEXT, "state" TEXT, "created_at" REAL',
    "parts": '"digest" TEXT PRIMARY KEY, "text" TEXT',
}

# (table, columns, unique), named as sqlite-utils names them: idx_<table>_<columns>.
INDEXES = [
    ("_sqlite_migrations", ("migration_set", "name"), True),
    ("runs", ("recipe",), False),
    ("runs", ("updated_at",), False),
    ("experiments", ("run_id", "seq"), True),
    ("experiments", ("run_id", "status"), False),
    ("experiments", ("run_id", "id", "seq", "status", "score", "delta"), False),
    ("example_results", ("experiment_id",), False),
    ("llm_calls", ("run_id",), False),
    ("llm_calls", ("cache_key",), False),
    ("llm_calls", ("experiment_id",), False),
    ("reviews", ("experiment_id",), False),
    ("reviews", ("run_id",), False),
    ("notes", ("recipe",), False),
    ("checks", ("recipe", "digest"), False),
    ("contributions", ("run_id",), False),
]


def statements() -> list[str]:
    out = [f'CREATE TABLE "{table}" ({columns})' for table, columns in TABLES.items()]
    for table, columns, unique in INDEXES:
        quoted = ", ".join(f'"{c}"' for c in columns)
        out.append(f'CREATE {"UNIQUE " if unique else ""}INDEX "idx_{table}_{"_".join(columns)}" ON "{table}" ({quoted})')
    return out
