"""A scripted agent's file that cannot be read as text or JSON: bytes that are not UTF-8, a lone
surrogate spelled as a JSON escape, a line nested too deeply. Each ends like a broken JSON line:
one sentence naming the file and the line, a non-zero exit, no traceback, nothing recorded or written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.core.kit import no_traceback, recipe, rows

GOOD = '{"view": "Overnight ok\\n"}\n'


def refused(cli, workspace: Path, content: bytes) -> str:
    """Runs a recipe whose proposals file holds `content`; checks the common promises, returns the output."""
    folder = recipe(workspace / "r")
    (folder / "proposals.jsonl").write_bytes(content)
    doc = (folder / "doc.txt").read_bytes()
    result = cli("run", folder, "--yes")
    out = result.output
    assert result.exit_code != 0, out
    assert ("\n" + out).count("\nError: ") == 1, out
    assert no_traceback(out), out
    assert (folder / "doc.txt").read_bytes() == doc and (folder / "proposals.jsonl").read_bytes() == content
    db = workspace / ".overnight" / "overnight.db"
    assert not db.exists() or rows(db, "select count(*) n from runs")[0]["n"] == 0, out
    return out


def test_bytes_that_are_not_utf8(workspace, cli):
    out = refused(cli, workspace, GOOD.encode() + b'\xff\xfe{"view":"Overnight"}\n')
    assert "proposals.jsonl:2: this line is not valid UTF-8 (invalid start byte)." in out


def test_a_bad_byte_late_in_a_file_names_its_own_line(workspace, cli):
    # Windows line ends and valid non-ASCII text before it do not shift the count; a cut-off character is caught too.
    content = ("é\r\n".join([GOOD.strip()] * 3) + "\r\n").encode() + b'{"view": "caf\xc3"}\r\n' + GOOD.encode()
    out = refused(cli, workspace, content)
    assert "proposals.jsonl:4: this line is not valid UTF-8" in out


@pytest.mark.parametrize("line, key", [
    ('{"view": "Overnight \\ud800"}', "view"),
    ('{"replace": ["hello", "Overnight \\udfff"]}', "replace"),
    ('{"view": "fine\\n", "rationale": "\\ud83d alone"}', "rationale"),
])
def test_a_lone_surrogate(workspace, cli, line, key):
    out = refused(cli, workspace, (GOOD + line + "\n").encode())
    assert f"proposals.jsonl:2: '{key}' holds '\\u" in out, out
    assert "a lone surrogate, which UTF-8 cannot store." in out


def test_a_line_nested_too_deeply(workspace, cli):
    out = refused(cli, workspace, (GOOD + "[" * 100000 + "]" * 100000 + "\n").encode())
    assert "proposals.jsonl:2: this line is nested too deeply to read as JSON." in out


def test_non_ascii_text_and_a_surrogate_pair_still_run(workspace, cli):
    folder = recipe(workspace / "r")
    # A pair written as two escapes is one character (😀), which is fine.
    (folder / "proposals.jsonl").write_text(json.dumps({"view": "café 😀 hello there\n"}) + "\n" + '{"view": "\\ud83d\\ude00 hello there, longer\\n"}\n', encoding="utf-8")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert no_traceback(result.output), result.output
