"""A text file whose lines end in "\r\n" keeps them: the agent and the diffs see "\n" lines, the
metric measures the bytes the person would have, and `apply` changes only the lines of the diff."""

from __future__ import annotations

import json

from tests.data.core.kit import recipe

# The score is how many "\r" the candidate file holds, plus its lines: a file turned to "\n"
# endings would score its line count alone.
COUNT = 'import sys\ndata = open(sys.argv[1], "rb").read()\nprint(data.count(b"\\r") * 100 + data.count(b"\\n"))\n'


def test_a_file_with_crlf_endings_is_measured_and_applied_with_them(workspace, cli):
    folder = recipe(workspace / "r", text="", metric='kind = "command"\nrun = "python3 {recipe}/count.py {file}"',
                    files={"count.py": COUNT}, proposals=[{"replace": ["line2", "l2\nline2b"]}])
    (folder / "doc.txt").write_bytes(b"Overnight is here\r\nline2\r\nline3\r\n")
    assert cli("run", folder, "--yes").exit_code == 0
    rows = [json.loads(x) for x in cli("log", "--json").output.splitlines()]
    assert [r["score"] for r in rows] == [303, 404]  # 3 then 4 lines, every one ending in \r\n
    diff = cli("diff", "1").output
    assert "-line2\n" in diff and "+l2\n" in diff and "\\r" not in diff
    assert cli("apply", "1").exit_code == 0
    assert (folder / "doc.txt").read_bytes() == b"Overnight is here\r\nl2\r\nline2b\r\nline3\r\n"


def test_a_file_with_mixed_endings_is_read_as_before(workspace, cli):
    folder = recipe(workspace / "r", text="", metric='kind = "command"\nrun = "python3 {recipe}/count.py {file}"',
                    files={"count.py": COUNT}, proposals=[{"replace": ["b", "c"]}])
    (folder / "doc.txt").write_bytes(b"a\r\nb\n")
    assert cli("run", folder, "--yes").exit_code == 0
    assert cli("apply", "1").exit_code == 0
    assert (folder / "doc.txt").read_bytes() == b"a\nc\n"  # "\n" throughout, as text mode reads it
