"""What a run stored reaches a terminal only as text: a rationale is a model's reply, and a
reply may hold escapes that set the window title, move the cursor or overwrite a line.
status, log, show, diff and explain write every control character as an escape, and log keeps
each experiment on one line of bounded length."""

from __future__ import annotations

import sqlite3

from tests.data.core.kit import recipe

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED\x1b[0m\rOVERWRITE\x08\x08 bell\x07 nul\x00end\u202eevil"


def _raw(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n") or 0x7f <= ord(c) < 0xa0 or c == "\u202e"]


def test_stored_escapes_reach_the_terminal_escaped(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n", "hi\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    db = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    with db:
        db.execute("update experiments set rationale = ?, reason = ? where seq = 1", [HOSTILE + "\nsecond line", HOSTILE])
        db.execute("update runs set stop_reason = ?", [HOSTILE])
    db.close()
    for args in (["status"], ["log"], ["show", "1"], ["diff", "1"]):
        out = cli(*args).output
        assert _raw(out) == [], (args, out)
    log = cli("log").output
    assert "\\x1b]0;PWNED\\x07" in log and "\\r" in log and "\\u202e" in log  # shown, as escapes
    row = [line for line in log.splitlines() if line.lstrip().startswith("1 ")]
    assert len(row) == 1 and "second line" in row[0]  # one experiment, one line
    assert "\\x1b]0;PWNED" in cli("show", "1").output


def test_a_long_rationale_is_one_bounded_line_in_log_and_whole_in_show(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    db = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    with db:
        db.execute("update experiments set rationale = ? where seq = 1", ["why " * 100_000])
    db.close()
    row = [line for line in cli("log").output.splitlines() if line.lstrip().startswith("1 ")]
    assert len(row) == 1 and len(row[0]) < 400 and row[0].endswith("...")
    assert cli("show", "1").output.count("why ") == 100_000
