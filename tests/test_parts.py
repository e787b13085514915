"""A large view is stored as parts, each once: a night of one-line changes to a large file costs
the store a few parts per experiment, not a copy of the file; every reader gets the view whole."""

from __future__ import annotations

import json
import random
import sqlite3
import zlib
from itertools import accumulate

import pytest

from overnight.core.errors import OvernightError
from overnight.core.parts import LEAST, MOST, PARTS_FROM, split, split_like
from overnight.core.store import Store
from tests.data.core.kit import no_traceback, recipe, rows


def text(lines: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return "".join(f"line {i}: {rng.random():.12f} {'x' * rng.randrange(60)}\n" for i in range(lines))


def test_parts_join_to_the_view_and_an_edit_changes_only_where_it_falls():
    view = text(40_000)
    parts = split(view)
    assert "".join(parts) == view
    assert all(len(p) <= MOST or p.count("\n") <= 1 for p in parts) and all(len(p) >= LEAST for p in parts[:-1])
    edited = view.replace("line 20000: ", "line 20000 (edited): ", 1)
    shared = set(parts) & set(split(edited))
    assert len(set(split(edited)) - shared) <= 2  # the part the edit falls in, perhaps its neighbour
    for odd in ("", "no newline at all " * 20_000, "\r\n".join(["a"] * 100_000), "é\u2028ü\n" * 100_000, "\ud800x\n" * 90_000):
        assert "".join(split(odd)) == odd


def test_a_view_that_begins_with_a_line_longer_than_a_part_is_cut_after_it():
    """A first line past `MOST` (a minified header, a long data row) is a part of its own, and the
    rest is cut as any text is: an edit further down shares every other part."""
    view = "h" * (3 * MOST) + "\n" + text(40_000)
    parts = split(view)
    assert parts[0] == "h" * (3 * MOST) + "\n" and "".join(parts) == view and len(parts) > 20
    edited = view.replace("line 20000: ", "line 20000 (edited): ", 1)
    assert len(set(split(edited)) - set(parts)) <= 2
    assert split_like(edited, view, parts) == split(edited)
    assert split_like(view, "h" * MOST + "\n" + view, split("h" * MOST + "\n" + view)) == parts


def test_the_store_keeps_a_large_view_once_in_parts_and_gives_it_back_whole(workspace):
    store = Store(workspace / "s.db")
    small, large = "hello\n", text(40_000)
    edited = large.replace("line 30000: ", "line 30000 (edited): ", 1)
    for digest, view in (("a", small), ("b", large), ("c", edited), ("c", edited)):
        store.put_candidate(digest, view)
    assert (store.candidate("a"), store.candidate("b"), store.candidate("c")) == (small, large, edited)
    assert store.candidate("missing") is None
    repeated = "".join(f"line {i}\n" for i in range(2000)) * 30  # the same parts, again and again
    store.put_candidate("r", repeated)
    assert store.candidate("r") == repeated
    db = workspace / "s.db"
    assert rows(db, "select digest, view, parts from candidates where digest = 'a'") == [{"digest": "a", "view": small, "parts": None}]
    stored = rows(db, "select sum(length(text)) as n from parts")[0]["n"]
    assert len(large) <= stored < len(large) + 2 * MOST  # the edited view added a part or two, not a copy
    named = json.loads(rows(db, "select parts from candidates where digest = 'c'")[0]["parts"])
    store.conn.execute("delete from parts where digest = ?", [named[3]])
    with pytest.raises(OvernightError, match="A part of the view c is missing from the store"):
        store.candidate("c")


def test_a_run_on_a_large_file_stores_parts_and_reviews_and_applies_whole(workspace, cli):
    doc = text(30_000)
    assert len(doc) > 4 * PARTS_FROM
    lines = doc.splitlines(keepends=True)
    proposals = [{"replace": [lines[i * 5000], lines[i * 5000].replace(":", ": more", 1)]} for i in range(1, 6)]
    folder = recipe(workspace / "r", text=doc, proposals=proposals, files={"score.sh": "grep -c more < $1 || true\n"})
    ran = cli("run", folder, "--yes")
    assert ran.exit_code == 0, ran.output
    db = workspace / ".overnight" / "overnight.db"
    assert rows(db, "select count(*) as n from candidates where view is null") == [{"n": 6}]  # the baseline and 5 keeps
    assert rows(db, "select sum(length(text)) as n from parts")[0]["n"] < 2 * len(doc)  # 6 views, not 6 copies
    shown = cli("diff", "1:5", "1:4")  # one change, between two views kept in parts
    assert shown.exit_code == 0 and no_traceback(shown.output), shown.output
    added = [line for line in shown.output.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert len(added) == 1 and ": more" in added[0]
    against_baseline = cli("diff", "1:5")  # five changes 5,000 lines apart: five hunks
    assert against_baseline.output.count("\n@@ ") == 5 and against_baseline.output.count(": more") == 5
    applied = cli("apply", "1:5", "--yes")
    assert applied.exit_code == 0, applied.output
    assert (folder / "doc.txt").read_text().count(": more") == 5


def test_a_store_made_before_parts_keeps_its_views_and_takes_new_ones_in_parts(workspace):
    from tests.test_store import migrated
    from overnight.core.store import migrations

    old = migrated(workspace / "old.db", _steps_before(migrations, "005_parts"))
    old.execute("insert into candidates (digest, view) values ('a', 'kept whole\n')")
    old.close()
    store = Store(workspace / "old.db")
    store.put_candidate("b", text(40_000))
    assert store.candidate("a") == "kept whole\n" and store.candidate("b") == text(40_000)
    columns = [r[1] for r in sqlite3.connect(workspace / "old.db").execute("pragma table_info(candidates)")]
    assert columns == ["digest", "view", "parts"]


def _steps_before(migrations, name: str):
    """The migrations up to, not including, `name`: a store as an older overnight left it."""
    from overnight.core.store import Migrations

    older = Migrations(migrations.name)
    for step in migrations._migrations:
        if step.name == name:
            break
        older(name=step.name)(step.fn)
    return older


def test_a_view_cut_from_the_view_it_edits_has_the_parts_a_whole_cut_gives():
    """`split_like` takes the parts an edit leaves alone from the edited view's: on many random
    edits (inserted, deleted and changed lines, at the start, the end, the middle, in several
    places, right after a cut, lines that repeat, lines longer than a part), it gives what
    `split` gives, the same list."""
    rng = random.Random(4)

    def line(mark: bool | None = None) -> str:
        while True:  # a line ending a part, or not, as asked; now and then one past MOST characters
            text = rng.choice([f"line {rng.random():.8f} {'x' * rng.randrange(80)}", f"again {rng.randrange(4)}",
                               "y" * rng.randrange(MOST // 2, 2 * MOST) if rng.random() < 0.02 else "z", ""])
            if mark is None or (zlib.crc32(text.encode()) & 31 == 0) == mark:
                return text + "\n"

    def edited(lines: list[str], parts: list[str]) -> list[str]:
        lines, cuts = list(lines), {*accumulate(map(len, parts))}
        after_cut = [k + 1 for k, end in enumerate(accumulate(map(len, lines))) if end in cuts][:-1] or [0]
        for _ in range(rng.choice([1, 1, 2, 5])):
            at = rng.choice([rng.randrange(3), len(lines) - rng.randrange(3), rng.randrange(len(lines) + 1), rng.choice(after_cut)])
            at = min(at, len(lines))
            kind = rng.randrange(3)
            if kind == 0:
                lines[at:at] = [line(rng.random() < 0.5) for _ in range(rng.randrange(1, 4))]
            elif kind == 1:
                del lines[at:at + rng.choice([1, 2, 50, 3000])]
            else:
                lines[at:at + 1] = [line(rng.random() < 0.5)]
        if lines and rng.random() < 0.1:
            lines[-1] = lines[-1].rstrip("\n")  # no newline at the end
        return lines or ["last\n"]

    for few_marks in (False, True):  # with few lines that end a part, most cuts fall MOST apart
        lines = [line(False if few_marks and rng.random() < 0.99 else None) for _ in range(15_000)]
        old = "".join(lines)
        parts = split(old)
        for _ in range(150):
            lines = edited(lines, parts)
            view = "".join(lines)
            like = split_like(view, old, parts)
            assert like == split(view), (len(old), len(view))
            old, parts = view, like


def test_a_rewrite_of_a_long_file_is_previewed_and_reported_within_the_diff_limit(workspace, cli):
    """A line diff of two long texts rewritten throughout grows with the square of their lines:
    `apply --dry-run` and `report` bound it as the run does, and say so, rather than seem to hang."""
    doc = "".join(f"line {i}: {'x' * 60}\n" for i in range(20_000))
    rewritten = "".join(line.replace("x", "y") if i % 2 else line for i, line in enumerate(doc.splitlines(keepends=True)))
    folder = recipe(workspace / "r", text=doc, proposals=[rewritten], files={"score.sh": "grep -c y < $1 || true\n"})
    assert cli("run", folder, "--yes").exit_code == 0
    preview = cli("apply", "1:1", "--dry-run")
    assert preview.exit_code == 0 and "past the limit of 1,000,000; they differ" in preview.output, preview.output
    report = workspace / "report.html"
    assert cli("report", "1", "-o", report).exit_code == 0
    assert "past the limit of 1,000,000" in report.read_text()
    assert cli("apply", "1:1", "--yes").exit_code == 0 and (folder / "doc.txt").read_text() == rewritten
    assert cli("apply", "1:1", "--yes").output.strip() == "No difference: the file already holds this version."
