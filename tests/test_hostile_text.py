"""Text a recipe, an agent or a metric supplies reaches the terminal escaped and keeps an output's
structure: a recipe's name, a rationale, a metric's stderr may hold escapes that set the window
title or clear the screen, and a TSV cell may hold a line break or a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import warnings

from tests.data.core.kit import no_traceback, recipe

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's window title
HOSTILE_NAME = r"a\u001b]0;pwned\u0007b"  # as written in recipe.toml
FORMULA = "=cmd|' /C calc'!A0"


def _raw(text: str) -> list[str]:
    """The control characters of `text` a terminal would obey (line breaks aside)."""
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0]


def _store(workspace, sql: str, args=()) -> None:
    """Changes the store as an older version of overnight, or another tool, may have left it."""
    db = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    with db:
        db.execute(sql, args)
    db.close()


# -- a recipe's name ---------------------------------------------------------------


def test_a_recipe_whose_name_holds_escapes_is_refused_where_it_is_read(workspace, cli, overnight_home):
    folder = recipe(workspace / "rn", proposals=["hello world\n"], name=HOSTILE_NAME)

    for args in (["recipes", "validate", folder], ["run", folder, "--yes"]):
        result = cli(*args)
        assert result.exit_code != 0, (args, result.output)
        assert _raw(result.output) == [] and no_traceback(result.output), (args, result.output)
        assert f"{folder / 'recipe.toml'}:2: [recipe] name: the name holds control or invisible characters (\\x1b, \\x07)" \
            in result.output, (args, result.output)
    assert not (workspace / ".overnight" / "overnight.db").exists()  # nothing ran

    for link in [p for p in folder.iterdir() if p.is_symlink()]:  # the test logs: an install refuses links
        link.unlink()
    result = cli("recipes", "install", folder, "--name", "ok")  # another name for the folder leaves the name as it is
    assert result.exit_code != 0 and _raw(result.output) == [] and no_traceback(result.output), result.output
    assert "[recipe] name: the name holds control or invisible characters" in result.output
    assert not (overnight_home / "recipes" / "ok").exists()


def test_names_with_spaces_accents_and_dashes_still_load(workspace, cli):
    for i, name in enumerate(("Café pricing — v2", "my-recipe 2.0", "Übersetzung: kürzer, bitte!")):
        result = cli("recipes", "validate", recipe(workspace / f"r{i}", name=name))
        assert result.exit_code == 0, result.output
        assert f"is a valid recipe '{name}'" in result.output


def test_an_older_runs_hostile_name_is_shown_escaped(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    _store(workspace, "update runs set recipe = ?", ["a" + TITLE + "b"])

    for args in (["status"], ["log"], ["show", "1:1"], ["explain", "1", "--yes"]):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        assert _raw(result.output) == [], (args, result.output)
    assert cli("show", "1:1").output.startswith("Experiment 1:1 of 'a\\x1b]0;pwned\\x07b'\n")
    assert "Run 1 of 'a\\x1b]0;pwned\\x07b': 1 kept change" in cli("explain", "1", "--yes").output


# -- a metric's stderr and a rationale ----------------------------------------------


def test_a_metrics_stderr_in_the_progress_lines_is_escaped(workspace, cli):
    score = 'if grep -q world "$1"; then printf \'boom\\033]0;pwned\\007\' >&2; exit 3; fi\nwc -c < "$1"\n'
    folder = recipe(workspace / "r", proposals=["hello world\n"], metric='kind = "command"\nrun = "sh {recipe}/crash.sh {file}"',
                    files={"crash.sh": score})

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert _raw(result.output) == [], result.output
    line = [x for x in result.output.splitlines() if x.startswith("#1 ")]
    assert len(line) == 1 and "crash" in line[0] and line[0].endswith("boom\\x1b]0;pwned\\x07"), result.output


def test_show_keeps_a_multi_line_rationale_inside_its_block(workspace, cli):
    why = "first line\r\x1b[2Jsecond\tpart\n  time       0.00 s (a fake line)\n--- a/doc.txt"
    folder = recipe(workspace / "r", proposals=[{"view": "hello world\n", "rationale": why}])
    assert cli("run", folder, "--yes").exit_code == 0

    out = cli("show", "1").output

    assert _raw(out) == []
    block = out[out.index("  rationale  "):].splitlines()[:3]
    assert block == ["  rationale  first line\\r\\x1b[2Jsecond\\tpart",
                     "               time       0.00 s (a fake line)",
                     "             --- a/doc.txt"]
    lines = out.splitlines()
    assert len([x for x in lines if x.startswith("  time ")]) == 1 and lines.count("--- a/doc.txt") == 1  # the real ones


# -- export --------------------------------------------------------------------------


def test_export_keeps_one_row_per_experiment_escapes_text_and_guards_formulas(workspace, cli):
    proposals = [{"view": "hello world\n", "rationale": "title" + TITLE + "\x1b[2J here"},
                 {"view": "hello wide world\n", "rationale": "one\rtwo\tthree\nfour"},
                 {"view": "hi\n", "rationale": FORMULA},
                 {"view": "hello\n", "rationale": "@SUM(A1:A2)"}]
    folder = recipe(workspace / "r", proposals=proposals)
    assert cli("run", folder, "--yes").exit_code == 0

    tsv = cli("export").output

    assert _raw(tsv.replace("\t", "").replace("\n", "")) == []
    rows = list(csv.DictReader(io.StringIO(tsv), delimiter="\t"))
    assert [r["experiment"] for r in rows] == ["1:0", "1:1", "1:2", "1:3", "1:4"]  # no row split, no column shifted
    assert all(None not in r and len(r) == 15 for r in rows)
    assert [r["rationale"] for r in rows[1:]] == ["title\\x1b]0;pwned\\x07\\x1b[2J here", "one\\rtwo three four",
                                                  "'" + FORMULA, "'@SUM(A1:A2)"]
    assert rows[3]["change"].startswith("-") and float(rows[3]["change"]) < 0  # numbers stay numbers

    # JSONL stays JSON: json escapes control characters itself, and the text comes back exact.
    jsonl = cli("export", "--format", "jsonl").output
    assert _raw(jsonl.replace("\n", "")) == []
    back = [json.loads(line) for line in jsonl.splitlines()]
    assert [r["rationale"] for r in back[1:]] == [p["rationale"] for p in proposals]


# -- report --------------------------------------------------------------------------


def test_the_report_of_a_run_without_a_score_writes_no_warning(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    _store(workspace, "update experiments set score = null, status = case when seq = 0 then 'baseline' else 'interrupted' end")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels found" would fail here
        result = cli("report", "-o", "morning.html")

    assert result.exit_code == 0 and result.output.startswith("Wrote morning.html ("), result.output
