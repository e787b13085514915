"""Reading runs back from the command line: status, log, show, diff, export, and addressing
experiments as SEQ or RUN:SEQ; and the dry run, which records nothing."""

from __future__ import annotations

import csv
import io
import json

from pathlib import Path

import pytest

from tests.data.core.kit import no_traceback, recipe, rows


@pytest.fixture
def two_runs(workspace, cli):
    """Run 1 of recipe 'first' and run 2 of recipe 'second', both finished."""
    first = recipe(workspace / "first", proposals=["hello world\n", "CRASH\n", "hi\n"])
    second = recipe(workspace / "second", text="one\n", proposals=["one two\n", "one two three\n"])
    assert cli("run", first, "--yes").exit_code == 0
    assert cli("run", second, "--yes").exit_code == 0
    return workspace


def test_status_and_its_json(two_runs, cli):
    result = cli("status")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["run", "recipe", "status", "exps"]
    assert lines[1].split()[:4] == ["2", "second", "finished", "2"]
    assert lines[2].split()[:4] == ["1", "first", "finished", "3"]
    assert "4 -> 14" in lines[1] and "6 -> 12" in lines[2]

    data = json.loads(cli("status", "--json").output)
    assert [r["run"] for r in data] == [2, 1]
    assert data[1]["best_experiment"] == "1:1"  # as people type it, never a row id
    assert data[1]["started_at"][:2] == "20" and "T" in data[1]["started_at"]  # ISO 8601
    assert data[1]["recipe"] == "first" and data[1]["status"] == "finished"
    assert data[1]["stop_reason"] == "the agent has no more proposals"
    assert data[1]["baseline_score"] == 6 and data[1]["best_score"] == 12 and data[1]["experiments"] == 3


def test_log_of_the_latest_and_of_a_named_run(two_runs, cli):
    latest = cli("log")
    assert latest.output.startswith("Run 2 of 'second' (finished: the agent has no more proposals)")
    first = cli("log", "1")
    assert first.output.startswith("Run 1 of 'first'")
    assert "the command exited with code 3" in first.output
    by_name = cli("log", "first")
    assert by_name.output == first.output

    lines = [json.loads(x) for x in cli("log", "1", "--json").output.splitlines()]
    assert [(x["seq"], x["status"]) for x in lines] == [(0, "baseline"), (1, "keep"), (2, "crash"), (3, "discard")]
    assert lines[1]["score"] == 12 and lines[1]["change"] == 6 and lines[1]["rationale"] == "idea 1"
    assert lines[1]["experiment"] == "1:1" and (lines[1]["run"], lines[1]["seq"]) == (1, 1)
    assert lines[1]["started_at"] is None or "T" in lines[1]["started_at"]

    missing = cli("log", "9")
    assert missing.exit_code != 0 and "There is no run '9'" in missing.output and no_traceback(missing.output)


def test_show_addresses_seq_and_run_seq(two_runs, cli):
    latest = cli("show", "1")
    assert latest.exit_code == 0
    assert latest.output.startswith("Experiment 2:1 of 'second'")
    crash = cli("show", "1:2")
    assert crash.output.startswith("Experiment 1:2 of 'first'")
    assert "status     crash: the command exited with code 3" in crash.output
    assert "boom: CRASH requested" in crash.output  # the trace tail
    assert "+CRASH" in crash.output  # and its diff
    by_name = cli("show", "first:2")
    assert by_name.output == crash.output
    nothing = cli("show", "1:7")
    assert nothing.exit_code != 0 and "Run 1 has no experiment 7" in nothing.output


def test_diff_against_the_baseline_and_between_two_experiments(two_runs, cli):
    against_baseline = cli("diff", "2")
    assert against_baseline.exit_code == 0
    assert "-one\n" in against_baseline.output and "+one two three\n" in against_baseline.output
    between = cli("diff", "2", "1")
    assert "-one two\n" in between.output and "+one two three\n" in between.output
    across = cli("diff", "1:1", "1:3")
    assert "-hi\n" in across.output and "+hello world\n" in across.output
    same = cli("diff", "1:1", "1:1")
    assert "No difference." in same.output
    recipes = cli("diff", "2:1", "1:1")  # two recipes' surfaces: no diff to read
    assert recipes.exit_code == 1 and no_traceback(recipes.output)
    assert recipes.output == ("Error: Experiment 2:1 is of recipe 'second' and 1:1 of 'first': "
                              "a diff compares two versions of one recipe's surface.\n")
    invalid = recipe(two_runs / "third", proposals=[{"replace": ["absent", "x"]}])
    cli("run", invalid, "--yes")
    no_view = cli("diff", "1")
    assert no_view.exit_code != 0 and "Experiment 1 has no candidate (invalid:" in no_view.output



def test_diff_finds_the_baseline_of_a_run_whose_row_does_not_name_it(two_runs, cli):
    import sqlite3

    db = sqlite3.connect(two_runs / ".overnight" / "overnight.db")
    with db:  # as an older overnight left a run: experiment 0 stored, the run row naming none
        db.execute("update runs set baseline_experiment = null where id = 2")
    found = cli("diff", "2:2")
    assert found.exit_code == 0 and "-one\n" in found.output and "+one two three\n" in found.output
    with db:  # and a run with no baseline stored at all
        db.execute("delete from experiments where run_id = 2 and seq = 0")
    db.close()
    none = cli("diff", "2:2")
    assert none.exit_code != 0 and no_traceback(none.output)
    assert "Run 2 has no baseline stored to compare with: give two experiments (overnight diff 2:A 2:B)." in none.output
    assert "+one two three" in cli("diff", "2:2", "2:1").output

def test_export_tsv_and_jsonl(two_runs, cli):
    tsv = cli("export", "1", "--format", "tsv")
    assert tsv.exit_code == 0
    table = list(csv.DictReader(io.StringIO(tsv.output), delimiter="\t"))
    assert [r["status"] for r in table] == ["baseline", "keep", "crash", "discard"]
    assert table[1]["score"] == "12.0" and table[1]["run"] == "1" and table[1]["experiment"] == "1:1"
    assert "\n" not in table[2]["reason"]

    jsonl = [json.loads(x) for x in cli("export", "--format", "jsonl").output.splitlines()]
    assert [x["seq"] for x in jsonl] == [0, 1, 2]
    assert all(x["run"] == 2 for x in jsonl)

    out = two_runs / "ledger.tsv"
    assert cli("export", "first", "-o", out).exit_code == 0
    assert out.read_text() == tsv.output

    store = two_runs / ".overnight" / "overnight.db"
    before = store.read_bytes()
    onto_store = cli("export", "-o", store)
    assert onto_store.exit_code == 1 and "is overnight's store, so nothing was written" in onto_store.output
    assert store.read_bytes() == before and no_traceback(onto_store.output)
    surface = two_runs / "first" / "doc.txt"
    mine = surface.read_text()
    onto_surface = cli("export", "first", "-o", surface)
    assert onto_surface.exit_code == 1 and "which only `overnight apply` writes" in onto_surface.output
    assert surface.read_text() == mine
    other = two_runs / "second" / "recipe.toml"  # another run's recipe: refused too
    theirs = other.read_text()
    onto_other = cli("export", "first", "-o", other)
    assert onto_other.exit_code == 1 and "is a file of run 2's recipe" in onto_other.output
    assert other.read_text() == theirs


def test_dry_run_prints_the_plan_and_records_nothing(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"], budget="experiments = 20\nparallel = 2\nminutes = 30",
                    guards='[[guards]]\nkind = "command"\nrun = "wc -l < {file}"\nmax = 3\nlabel = "lines"')
    result = cli("run", folder, "--yes", "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Recipe   r" in out
    assert f"Surface  text ({folder / 'doc.txt'})" in out
    assert "Metric   the number printed by `sh {recipe}/score.sh {file}` (maximize)" in out
    assert "Guard    lines <= 3" in out
    assert "Agent    scripted" in out
    assert "Budget   20 experiments, 30 min, $0, 60 s per experiment, 2 in parallel" in out
    assert "Baseline 6 (maximize), measured in " in out
    assert "Estimate about " in out and " per experiment" in out
    assert "Dry run: nothing was recorded." in out
    db = workspace / ".overnight" / "overnight.db"
    assert not db.exists() or rows(db, "select count(*) n from runs")[0]["n"] == 0
    assert not (folder / "calls.log").read_text().count("hello world")
    assert (folder / "doc.txt").read_text() == "hello\n"


def test_dry_run_with_a_baseline_that_fails(workspace, cli):
    folder = recipe(workspace / "r", text="CRASH\n")
    result = cli("run", folder, "--yes", "--dry-run")
    assert result.exit_code != 0
    assert "The baseline could not be measured (crash)" in result.output and no_traceback(result.output)


def test_help_lists_the_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("run", "status", "log", "show", "diff", "export", "apply", "plugins"):
        assert f"  {command} " in result.output
    run_help = cli("run", "--help")
    assert "--dry-run" in run_help.output and "--resume" in run_help.output and "--db" in run_help.output


def test_log_shows_the_last_experiments_of_a_long_run_and_all_of_them_on_request(two_runs, cli):
    every = cli("log", "1", "--all")
    assert every.output == cli("log", "1").output  # a short run is shown whole either way
    last = cli("log", "1", "--last", "2")
    lines = last.output.splitlines()
    assert lines[0].startswith("Run 1 of 'first'")
    assert lines[1] == "2 earlier experiments are not shown: add --all to list every one."
    assert [line.split()[0] for line in lines[3:]] == ["2", "3"]
    assert lines[3:] == every.output.splitlines()[4:]
    assert "1 earlier experiment is not shown" in cli("log", "1", "--last", "3").output
    as_json = cli("log", "1", "--json", "--last", "1")
    assert [json.loads(x)["seq"] for x in as_json.stdout.splitlines()] == [3]
    assert "3 earlier experiments are not shown" in as_json.stderr  # the lines on stdout stay JSON
    bad = cli("log", "1", "--last", "0")
    assert bad.exit_code != 0 and "--last" in bad.output and no_traceback(bad.output)


# Runs a reading command as `overnight` runs it and says which heavy modules it imported.
READ_PROBE = """
import sys
from overnight.cli.main import main
sys.argv = ["overnight", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print("@@", sorted(m for m in ("sqlite_utils", "numpy", "pandas") if m in sys.modules))
"""


def test_reading_commands_use_the_standard_sqlite3_only(two_runs):
    import subprocess
    import sys

    db = str(two_runs / ".overnight" / "overnight.db")
    for command in (["status"], ["log"], ["log", "--all", "--json"], ["show", "1:2"], ["export", "1"]):
        done = subprocess.run([sys.executable, "-c", READ_PROBE, *command, "--db", db], capture_output=True,
                              text=True, timeout=60, cwd=two_runs)
        assert done.returncode == 0, done.stderr
        assert done.stdout.rsplit("@@", 1)[1].strip() == "[]", command


def test_commands_that_read_leave_a_file_that_is_no_store_as_it_was(workspace, cli):
    import sqlite3

    empty = workspace / "empty.db"  # as a start interrupted before its store was made leaves it
    empty.write_bytes(b"")
    for args in (["status"], ["log"], ["export"]):
        result = cli(*args, "--db", empty)  # read as the new store a run would make of it
        assert no_traceback(result.output), result.output
        assert f"no runs in {empty} yet" in result.output.lower(), result.output
        assert empty.read_bytes() == b""
    other = workspace / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table mine (x)")
    conn.commit()
    conn.close()
    result = cli("log", "--db", other)
    assert result.exit_code == 1 and f"{other} is not an overnight store; nothing was changed." in result.output
    conn = sqlite3.connect(other)
    assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["mine"]
    assert conn.execute("pragma journal_mode").fetchone()[0] == "delete"  # its own journal mode, as it was
    conn.close()
    assert other.read_bytes()[18:20] == b"\x01\x01"  # the header's file format: not switched to WAL


def test_commands_that_write_leave_another_programs_database_as_it_was(workspace, cli):
    """A run, a check, a night, apply and explain pointed at a database overnight did not make
    refuse it before writing: none adds its tables to it."""
    import sqlite3

    other = workspace / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table mine (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    folder = recipe(workspace / "r", proposals=[{"view": "hello there\n"}], files={"score.sh": "wc -c < $1\n"})
    for args in (["run", folder, "--yes"], ["check", folder, "--yes"], ["night", folder, "--yes"],
                 ["apply", "1:1", "--yes"], ["explain", "1", "--yes"], ["demo", "--dir", workspace / "d"]):
        result = cli(*args, "--db", other)
        assert result.exit_code == 1 and no_traceback(result.output), (args, result.output)
        assert f"{other} is not an overnight store; nothing was changed." in result.output, (args, result.output)
        assert other.read_bytes() == before, args
    empty = workspace / "empty.db"
    empty.write_bytes(b"")
    result = cli("apply", "1:1", "--yes", "--db", empty)  # a command that needs a run makes no store to look in
    assert result.exit_code == 1 and f"There is no run '1' in {empty}" in result.output
    assert empty.read_bytes() == b""
    for pragma in ("application_id = 1234", "user_version = 7"):  # nothing in it, but another program's mark
        marked = workspace / f"marked-{pragma.split()[0]}.db"
        conn = sqlite3.connect(marked)
        conn.execute(f"pragma {pragma}")
        conn.close()
        before = marked.read_bytes()
        result = cli("run", folder, "--yes", "--db", marked)
        assert result.exit_code == 1 and f"{marked} is not an overnight store; nothing was changed." in result.output
        assert marked.read_bytes() == before
    fresh = sqlite3.connect(workspace / "fresh.db")  # a database with nothing in it yet becomes a store
    fresh.execute("vacuum")
    fresh.close()
    assert cli("run", folder, "--yes", "--db", workspace / "fresh.db").exit_code == 0
    assert rows(workspace / "fresh.db", "select count(*) as n from runs") == [{"n": 1}]


def test_numbers_past_sqlites_and_a_store_edited_by_hand_are_one_sentence(two_runs, cli):
    import sqlite3

    huge = "9" * 25
    assert "There is no run '" + huge + "'" in cli("log", huge).output
    assert f"Run 2 has no experiment {huge}" in cli("show", f"2:{huge}").output
    assert cli("log", "--last", huge).exit_code == 0
    if Path("/dev/full").exists():  # a disk that is full
        full = cli("export", "-o", "/dev/full")
        assert full.exit_code == 1 and "Error: No space left on device" in full.output and no_traceback(full.output)
    db = sqlite3.connect(two_runs / ".overnight" / "overnight.db")
    with db:
        db.execute("update runs set status = 'running', pid = ? where id = 1", [10 ** 12])
        db.execute("drop table candidates")
    db.close()
    status = cli("status")
    assert status.exit_code == 0 and "died" in status.output  # no process has a pid that large
    broken = cli("diff", "2:1")
    assert broken.exit_code == 1 and no_traceback(broken.output)
    assert "The store could not be read or written: no such table: candidates." in broken.output


@pytest.mark.parametrize("edit, command, said", [
    ("update experiments set delta = 'high' where run_id = 1 and seq = 1", ["log", "1"],
     "experiments.delta of the row with id 2 is text where overnight keeps a number"),
    ("update experiments set score = x'00ff' where run_id = 1 and seq = 1", ["export", "1", "--format", "jsonl"],
     "experiments.score of the row with id 2 is a blob of bytes where overnight keeps a number"),
    ("update experiments set meta = '{bad' where run_id = 2 and seq = 1", ["show", "2:1"],
     "experiments.meta of the row with id 6 is not a JSON object"),
    ("update runs set recipe_text = null, recipe_path = null where id = 2", ["diff", "2:1"],
     "runs.recipe_path of the row with id 2 is empty (NULL)"),
    ("update runs set started_at = 1e300 where id = 1", ["status", "--json"],
     "runs.started_at of the row with id 1 is 1e+300, no time in seconds since 1970"),
    ("update runs set status = null where id = 1", ["status"], "runs.status of the row with id 1 is empty (NULL)"),
])
def test_a_value_edited_into_the_store_by_hand_is_named(two_runs, cli, edit, command, said):
    """A command that trips on a value overnight never writes names the value, not a traceback."""
    import sqlite3

    db = sqlite3.connect(two_runs / ".overnight" / "overnight.db")
    with db:
        db.execute(edit)
    db.close()
    result = cli(*command)
    assert result.exit_code == 1 and no_traceback(result.output), result.output
    store = two_runs / ".overnight" / "overnight.db"
    assert f"Error: The store {store} holds a value overnight did not write: {said}. Was it edited by hand?" in result.output


def test_a_recorded_recipe_that_no_longer_reads_is_told_from_the_file(two_runs, cli):
    """The recipe file reads well; the copy the run recorded does not: the sentence says which."""
    import sqlite3

    db = sqlite3.connect(two_runs / ".overnight" / "overnight.db")
    with db:
        db.execute("update runs set recipe_text = '[surface' where id = 2")
    db.close()
    result = cli("apply", "2:1", "--dry-run")
    assert result.exit_code == 2 and no_traceback(result.output), result.output
    assert "Run 2 recorded its recipe as it was when it began, and that copy (kept in the store) no longer reads: " \
           in result.output and "this is not valid TOML" in result.output


def test_a_bug_on_a_sound_store_is_not_blamed_on_the_store(two_runs):
    """An unforeseen error with every stored value as overnight wrote it stays a traceback: a bug to report."""
    import subprocess
    import sys

    code = ("import sys; from overnight.cli import inspect; inspect.fmt = lambda *_: 1 + 'x'; "
            "from overnight.cli.main import main; sys.argv = ['overnight', 'log', '1']; main()")
    done = subprocess.run([sys.executable, "-c", code], cwd=two_runs, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "TypeError: unsupported operand type" in done.stderr
    assert "holds a value overnight did not write" not in done.stderr


def test_a_scripted_agent_whose_edits_never_fit_gets_no_advice_about_models(workspace, cli):
    folder = recipe(workspace / "r", proposals=[{"replace": ["absent", "x"]}, {"replace": ["gone", "y"]}])
    result = cli("run", folder, "--yes")
    assert "No proposal could be used: 2 of 2 ended invalid" in result.output
    assert "the agent's proposals do not fit the file as it is: `overnight show 1:1` says why for the first." in result.output
    assert "max_tokens" not in result.output and "larger model" not in result.output


def test_an_argument_that_is_not_utf8_and_options_that_contradict_are_one_sentence(two_runs, cli):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "overnight.cli.main", "log", b"\xff"], cwd=two_runs,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == "Error: the argument '\\xff' is not UTF-8 text.\n"
    both = cli("log", "--all", "--last", "3")
    assert both.exit_code == 2 and "--all lists every experiment and --last N the last N: give one of them." in both.output


@pytest.mark.parametrize("pid", [-1, 99999999999999, "abc"])
def test_a_stored_pid_no_process_can_have_is_a_run_that_died(workspace, cli, pid):
    """A pid edited into the store that is no process's (negative, past the largest, text) is taken
    for a run that died: it resumes, and no advice names `kill -1`."""
    import sqlite3

    folder = recipe(workspace / "r", proposals=["hello world\n", "hello there world\n"], budget="experiments = 1")
    assert cli("run", folder, "--yes").exit_code == 0
    db = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    with db:
        db.execute("update runs set status = 'running', pid = ?", [pid])
    db.close()
    assert "died" in cli("status").output
    resumed = cli("run", folder, "--resume", "--yes")
    assert resumed.exit_code == 0 and no_traceback(resumed.output), resumed.output
    assert "still running" not in resumed.output


def test_a_number_in_a_secret_looking_variable_is_not_masked_out_of_the_store(workspace, cli, monkeypatch):
    """`MAX_TOKENS=100000` is named like a secret, but masking 100000 would mask it in the stored
    recipe and budget too, which would then no longer read; a key still is masked."""
    import sqlite3

    from overnight.core.damage import first_problem

    monkeypatch.setenv("MAX_TOKENS", "100000")
    monkeypatch.setenv("SHOP_API_KEY", "sk-shop-0123456789")
    folder = recipe(workspace / "r", proposals=[{"view": "hello world\n", "rationale": "say sk-shop-0123456789"}],
                    budget="tokens = 100000")
    assert cli("run", folder, "--yes").exit_code == 0
    db = workspace / ".overnight" / "overnight.db"
    assert first_problem(sqlite3.connect(db)) is None
    assert '"tokens": 100000' in rows(db, "select config from runs")[0]["config"]
    assert "sk-shop-0123456789" not in rows(db, "select rationale from experiments where seq = 1")[0]["rationale"]
    shown = cli("diff", "1:1")
    assert shown.exit_code == 0 and "+hello world" in shown.output, shown.output
