"""The story of issue 2, end to end through the CLI: a text file, a scoring command, twenty
scripted proposals; every status shows up in the log, and nothing of the user's is written
until `overnight apply`."""

from __future__ import annotations

import hashlib
import json
import time

from tests.data.core.kit import alive, experiments, no_traceback, recipe, rows

PROPOSALS = [
    "hello world\n",                                          # 1 keep (12 characters)
    "hi\n",                                                   # 2 discard
    "hello world\n",                                          # 3 duplicate of 1
    "CRASH\n",                                                # 4 crash
    "SLEEP\n",                                                # 5 timeout
    {"replace": ["not in the text", "x"], "rationale": "edit something that is not there"},  # 6 invalid
    {"replace": ["world", "world!"], "rationale": "add an exclamation"},  # 7 keep (13)
    "NONUM\n",                                                # 8 crash: no number
    "hello world, once more\n",                               # 9 keep
    "short\n",                                                # 10 discard
    {"replace": ["once more", "once more and again"], "rationale": "longer still"},  # 11 keep
    "hi\n",                                                   # 12 duplicate of 2
    "a\n",                                                    # 13 discard
    "bb\n",                                                   # 14 discard
    "ccc\n",                                                  # 15 discard
    "dddd\n",                                                 # 16 discard
    "eeeee\n",                                                # 17 discard
    "ffffff\n",                                               # 18 discard
    "ggggggg\n",                                              # 19 discard
    "hello world, once more and again!\n",                    # 20 keep
]
EXPECTED = ["baseline", "keep", "discard", "duplicate", "crash", "timeout", "invalid", "keep", "crash", "keep",
            "discard", "keep", "duplicate", "discard", "discard", "discard", "discard", "discard", "discard",
            "discard", "keep"]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_twenty_proposals_end_to_end(workspace, cli):
    folder = recipe(workspace / "greeting", proposals=PROPOSALS, budget="per_experiment_seconds = 1")
    doc = folder / "doc.txt"
    before, mtime = sha(doc), doc.stat().st_mtime_ns

    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert no_traceback(result.output)
    assert "Kept 5 of 20 experiments" in result.output
    assert "the agent has no more proposals" in result.output
    # The summary: by status, kept K of N, baseline -> best, spend, and what to do next.
    assert "(2 crash, 9 discard, 2 duplicate, 1 invalid, 5 keep, 1 timeout)" in result.output
    assert "Score (maximize): baseline 6 -> best 34 (gain +466.7%), experiment 1:20." in result.output
    assert "Spent " in result.output and "overnight apply 1:20" in result.output

    # The log: the baseline and twenty experiments, each with its status and its reason.
    db = workspace / ".overnight" / "overnight.db"
    exps = experiments(db)
    assert [e["status"] for e in exps] == EXPECTED
    assert all(e["reason"] for e in exps)
    by_seq = {e["seq"]: e for e in exps}
    assert "same candidate as experiment 1" in by_seq[3]["reason"]
    assert "boom: CRASH requested" in by_seq[4]["trace"] and "about to fail" in by_seq[4]["trace"]
    assert by_seq[5]["reason"] == "took longer than 1 s"
    assert "not found in the current best view" in by_seq[6]["reason"]
    assert "printed no number" in by_seq[8]["reason"]
    assert by_seq[20]["score"] == len(PROPOSALS[19])

    log = cli("log")
    assert log.exit_code == 0
    lines = log.output.splitlines()
    assert len(lines) == 2 + 21  # title, header, baseline + 20
    for line, status in zip(lines[2:], EXPECTED):
        assert status in line
    assert "measured 1 time" in lines[2]
    assert "add an exclamation -- beats the best" in log.output
    assert "took longer than 1 s" in log.output

    # A duplicate is not measured again: the scorer saw "hello world" and "hi" once each.
    calls = (folder / "calls.log").read_text().splitlines()
    assert calls.count("hello world") == 1 and calls.count("hi") == 1

    # The timeout killed the whole process group: the child the scorer started is gone too.
    orphan = int((folder / "orphan.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(orphan), f"process {orphan} outlived the timeout"

    # Nothing of the user's was written by the run.
    assert sha(doc) == before and doc.stat().st_mtime_ns == mtime

    d = cli("diff", "20")
    assert d.exit_code == 0
    assert "-hello" in d.output and "+hello world, once more and again!" in d.output
    d2 = cli("diff", "20", "11")
    assert "-hello world, once more and again\n" in d2.output + "\n" and "+hello world, once more and again!" in d2.output

    dry = cli("apply", "20", "--dry-run")
    assert dry.exit_code == 0 and "+hello world, once more and again!" in dry.output
    assert sha(doc) == before

    applied = cli("apply", "20")
    assert applied.exit_code == 0, applied.output
    assert doc.read_text() == PROPOSALS[19]
    backups = list((workspace / ".overnight" / "backups").iterdir())
    assert len(backups) == 1 and backups[0].read_text() == "hello\n"
    # The previous version is in the store too.
    review = rows(db, "select * from reviews")[0]
    assert review["action"] == "applied" and review["path"] == str(doc)
    assert rows(db, "select view from candidates where digest = ?", [review["previous"]])[0]["view"] == "hello\n"

    # The person edits the file; applying another experiment now would undo that: refused.
    doc.write_text("my own edit\n")
    dry = cli("apply", "9", "--dry-run")  # a dry run shows what would change, and warns
    assert dry.exit_code == 0 and "Warning:" in dry.output and "changed since run 1 began" in dry.output
    assert "-my own edit" in dry.output and doc.read_text() == "my own edit\n"
    refused = cli("apply", "9")
    assert refused.exit_code != 0
    assert "changed since run 1 began" in refused.output and "--force" in refused.output
    assert no_traceback(refused.output)
    assert doc.read_text() == "my own edit\n"
    assert len(rows(db, "select * from reviews")) == 1

    forced = cli("apply", "9", "--force")
    assert forced.exit_code == 0, forced.output
    assert doc.read_text() == PROPOSALS[8]
    kept = sorted(p.read_text() for p in (workspace / ".overnight" / "backups").iterdir())
    assert kept == ["hello\n", "my own edit\n"]


def test_apply_of_a_version_the_file_already_holds_says_so_and_writes_nothing(workspace, cli):
    """A second apply says what its dry run says: no rewrite, no second backup, no second review."""
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    doc, backups = folder / "doc.txt", workspace / ".overnight" / "backups"
    assert cli("apply", "1").exit_code == 0 and doc.read_text() == "hello world\n"
    written = doc.stat().st_mtime_ns

    dry, again = cli("apply", "1", "--dry-run"), cli("apply", "1")
    assert dry.exit_code == again.exit_code == 0
    assert dry.output == again.output == "No difference: the file already holds this version.\n"
    assert doc.stat().st_mtime_ns == written and len(list(backups.iterdir())) == 1
    assert len(rows(workspace / ".overnight" / "overnight.db", "select * from reviews")) == 1


def test_apply_of_an_unknown_experiment_writes_nothing(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    assert cli("run", folder, "--yes").exit_code == 0
    result = cli("apply", "7")
    assert result.exit_code != 0
    assert "Run 1 has no experiment 7" in result.output
    assert no_traceback(result.output)
    assert (folder / "doc.txt").read_text() == "hello\n"
    assert not (workspace / ".overnight" / "backups").exists()
    other = cli("apply", "5:1")
    assert other.exit_code != 0 and "There is no run '5'" in other.output
    bad = cli("apply", "one")
    assert bad.exit_code != 0 and "is not an experiment" in bad.output
    assert (folder / "doc.txt").read_text() == "hello\n"
