"""What in a store overnight did not write: a value edited in by hand that the code reading it
cannot take (text where a number belongs, a blob, JSON that is not JSON, a time past any clock).

Asked only once a command has failed in a way overnight did not foresee (cli/main.py): reading
every value of every row on each command would cost the read paths their speed, and a store
only overnight writes never needs it. When the store is damaged, the person learns which value
to mend instead of reading a traceback; when it is not, the failure is a bug and shows as one.
"""

from __future__ import annotations

import sqlite3

# The typeof() each declared column type holds as overnight writes it (NULL always may).
TYPES = {"INTEGER": ("integer", "real"), "REAL": ("real", "integer"), "FLOAT": ("real", "integer"), "TEXT": ("text",)}
WORDS = {"integer": "a whole number", "real": "a number", "text": "text", "blob": "a blob of bytes"}
# Columns overnight keeps JSON in, and what it reads there.
JSON = {("runs", "config"): "object", ("experiments", "meta"): "object", ("experiments", "components"): "object",
        ("experiments", "samples"): "array", ("llm_calls", "messages"): "array", ("candidates", "parts"): "array"}
# Columns every row has.
NOT_NULL = {("runs", "recipe"), ("runs", "recipe_path"), ("runs", "status"), ("runs", "goal"),
            ("experiments", "run_id"), ("experiments", "seq"), ("experiments", "status"), ("applies", "path")}
LAST_TIME = 1e11  # seconds since 1970: a `*_at` column past this (the year 5138) is no time overnight wrote


def found() -> str | None:
    """A sentence naming the first hand-made value of the stores this process opened; None when
    there is none (or a store cannot be read at all, which its own error says)."""
    from .store import opened

    for store in list(opened):
        try:
            problem = first_problem(store.conn)
        except sqlite3.Error:
            continue
        if problem:
            return (f"The store {store.path} holds a value overnight did not write: {problem}. Was it edited by hand? "
                    "Put it right with the sqlite3 tool (or delete that row), or use another store.")
    return None


def first_problem(conn: sqlite3.Connection) -> str | None:
    tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' "
                                         "and name not like 'sqlite_%' and name not like '\\_%' escape '\\' order by rowid")]
    for table in tables:
        columns = [(r[1], (r[2] or "").upper()) for r in conn.execute(f'PRAGMA table_info("{table}")')]
        tests = [(name, _wrong(table, name, kind)) for name, kind in columns]
        tests = [(name, sql) for name, sql in tests if sql]
        if not tests:
            continue
        row = conn.execute(f'select rowid, {", ".join(f"({sql})" for _, sql in tests)} from "{table}" '
                           f'where {" or ".join(f"({sql})" for _, sql in tests)} limit 1').fetchone()
        if row is not None:
            name = next(name for (name, _), bad in zip(tests, row[1:]) if bad)
            return f"{table}.{name} of the row with id {row[0]} {_what(conn, table, name, dict(columns)[name], row[0])}"
    return None


def _wrong(table: str, name: str, kind: str) -> str | None:
    """A SQL condition true when the column's value is not what overnight writes there."""
    q = f'"{name}"'
    checks = []
    allowed = TYPES.get(kind)
    if allowed:
        checks.append(f"typeof({q}) not in ('null', {', '.join(repr(t) for t in allowed)})")
    if (table, name) in NOT_NULL:
        checks.append(f"{q} is null")
    if (table, name) in JSON:
        # CASE, not OR: SQLite may ask json_type of malformed JSON, which is an error, not false.
        checks.append(f"({q} is not null and case when json_valid({q}) then json_type({q}) != '{JSON[table, name]}' else 1 end)")
    if name.endswith("_at") and kind in ("REAL", "FLOAT", "INTEGER"):
        checks.append(f"(typeof({q}) in ('real', 'integer') and ({q} < 0 or {q} > {LAST_TIME:.0f}))")
    return " or ".join(checks) or None


def _what(conn: sqlite3.Connection, table: str, name: str, declared: str, rowid: int) -> str:
    value, kind = conn.execute(f'select "{name}", typeof("{name}") from "{table}" where rowid = ?', [rowid]).fetchone()
    if kind == "null":
        return "is empty (NULL)"
    if (table, name) in JSON and kind == "text":
        return f"is not a JSON {JSON[table, name]}"
    if name.endswith("_at") and kind in ("real", "integer"):
        return f"is {value}, no time in seconds since 1970"
    return f"is {WORDS.get(kind, kind)} where overnight keeps {WORDS.get(TYPES[declared][0], declared.lower())}"
