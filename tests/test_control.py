"""The run controls and review notes on the command line, and how notes reach later runs.

Given a real run of a small recipe, `overnight pause|resume|stop|steer|reject|star`
change the store (and so the run, wherever it runs), and a note on a rejected
experiment is in the agent's context in the next run of the same recipe.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overnight.core.store import Store
from tests.tui_support import GREETING, copy_store, recipe, run_once, run_recipe

QUESTION_MARKS = [{"replace": ["?", "?" * i], "rationale": f"more question marks {i}"} for i in range(2, 30)]


def rows(db: Path, sql: str, args=()) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def wait_for(predicate, seconds: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except sqlite3.OperationalError:  # the run is still creating the store
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_run(folder: Path, db: Path) -> subprocess.Popen:
    """`overnight run` in a process of its own, as a person would start it in another terminal."""
    return subprocess.Popen([sys.executable, "-m", "overnight.cli.main", "run", str(folder), "--yes", "--quiet", "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return run_once(tmp_path_factory.mktemp("made"))


@pytest.fixture
def finished(made, workspace):
    """A copy of a finished run's store, for this test alone."""
    folder, db = made
    return folder, copy_store(db, workspace / "store.db")


# -- reviews and steering on a finished run -------------------------------------------


def test_reject_records_a_review_and_a_note_for_later_runs(finished, cli):
    folder, db = finished

    result = cli("reject", "2", "--note", "a longer opening is not what we want", "--db", db)

    assert result.exit_code == 0, result.output
    assert "Rejected experiment 1:2" in result.output
    exp = rows(db, "select id from experiments where seq = 2")[0]
    review = rows(db, "select * from reviews")[0]
    assert (review["action"], review["experiment_id"], review["recipe"], review["note"]) == (
        "rejected", exp["id"], "greeting", "a longer opening is not what we want")
    note = rows(db, "select * from notes")[0]
    assert note["kind"] == "review" and note["recipe"] == "greeting" and note["run_id"] == 1
    assert note["text"] == "A reviewer rejected experiment 1:2 (a warmer opening): a longer opening is not what we want"


def test_star_with_and_without_a_note(finished, cli):
    _, db = finished

    assert cli("star", "1:3", "--db", db).exit_code == 0
    result = cli("star", "1", "--note", "short and friendly", "--db", db)

    assert result.exit_code == 0 and ("The note is kept for later runs of 'greeting', but this recipe's agent, scripted, "
                                      "does not read notes (only the llm and command agents do).") in result.output
    assert [(r["action"], r["note"]) for r in rows(db, "select * from reviews order by id")] == [
        ("starred", ""), ("starred", "short and friendly")]
    assert [n["text"] for n in rows(db, "select * from notes")] == [
        "A reviewer starred experiment 1:1 (drop the filler words): short and friendly"]


def test_steer_adds_a_steering_note(finished, cli):
    _, db = finished

    result = cli("steer", "keep the greeting under ten words", "--db", db)

    assert result.exit_code == 0 and ("Noted for 'greeting', but this recipe's agent, scripted, does not read notes "
                                      "(only the llm and command agents do).") in result.output
    assert [(n["kind"], n["text"]) for n in rows(db, "select * from notes")] == [("steer", "keep the greeting under ten words")]


@pytest.mark.parametrize("args, message", [
    (("reject", "2"), "Missing option '--note'"),
    (("reject", "2", "--note", "  "), "A rejection needs a note saying why"),
    (("reject", "0", "--note", "no"), "is the baseline"),
    (("reject", "99", "--note", "no"), "Run 1 has no experiment 99"),
    (("star", "x"), "'x' is not an experiment"),
    (("steer", " "), "A steering line cannot be empty"),
    (("pause",), "Run 1 is finished, so there is nothing to pause."),
    (("resume", "1"), "Run 1 is finished, so there is nothing to resume."),
    (("stop", "7"), "There is no run '7'"),
])
def test_mistakes_are_one_sentence_and_change_nothing(finished, cli, args, message):
    _, db = finished
    before = rows(db, "select (select count(*) from reviews) r, (select count(*) from notes) n, "
                      "(select group_concat(coalesce(control, '-')) from runs) c")

    result = cli(*args, "--db", db)

    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert rows(db, "select (select count(*) from reviews) r, (select count(*) from notes) n, "
                    "(select group_concat(coalesce(control, '-')) from runs) c") == before


def test_stop_on_a_stopped_run_says_only_that_and_pause_still_says_how_to_continue(finished, cli):
    """Someone stopping a run wants it stopped: how to continue it is advice for pause, not for stop."""
    _, db = finished
    with sqlite3.connect(db) as conn:
        conn.execute("update runs set status = 'stopped'")

    stop = cli("stop", "--db", db)
    assert stop.exit_code == 1 and stop.output == "Error: Run 1 is stopped, so there is nothing to stop.\n"
    pause = cli("pause", "--db", db)
    assert pause.exit_code == 1 and "so there is nothing to pause. Continue it with `overnight run" in pause.output

    other = subprocess.Popen(["sleep", "30"])  # a run that died: its pid is another program's now
    try:
        with sqlite3.connect(db) as conn:
            conn.execute("update runs set status = 'running', pid = ?, ended_at = null", [other.pid])
        stop = cli("stop", "--db", db)
        assert stop.exit_code == 1 and stop.output == (f"Error: Run 1 is marked running but its process ({other.pid}) "
                                                       "is gone, so there is nothing to stop.\n")
    finally:
        other.kill()
        other.wait()
    assert rows(db, "select control from runs")[0]["control"] is None


# -- controls of a run in another process ---------------------------------------------


def test_pause_resume_and_stop_reach_a_run_in_another_process(workspace, cli):
    folder = recipe(workspace / "greeting", QUESTION_MARKS, slow=0.3, experiments=40)
    db = workspace / "store.db"
    proc = start_run(folder, db)
    try:
        wait_for(lambda: db.exists() and rows(db, "select count(*) n from experiments")[0]["n"] >= 2, what="the run to start")

        result = cli("pause", "--db", db)
        assert result.exit_code == 0 and "pauses after the experiment in flight" in result.output
        wait_for(lambda: rows(db, "select status from runs")[0]["status"] == "paused", what="the pause")
        count = rows(db, "select count(*) n from experiments")[0]["n"]
        time.sleep(1.0)
        assert rows(db, "select count(*) n from experiments")[0]["n"] == count  # nothing runs while paused
        assert "already paused" in cli("pause", "1", "--db", db).output

        assert cli("resume", "--db", db).exit_code == 0
        wait_for(lambda: rows(db, "select count(*) n from experiments")[0]["n"] > count, what="the run to go on")
        assert rows(db, "select status from runs")[0]["status"] == "running"

        assert "stops after the experiment in flight" in cli("stop", "1", "--db", db).output
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = rows(db, "select * from runs")[0]
    assert (run["status"], run["stop_reason"]) == ("stopped", "stopped on request")
    assert run["experiments"] < 40
    assert (folder / "greeting.txt").read_text() == GREETING


def test_a_run_whose_process_died_is_named_so(workspace, cli):
    folder = recipe(workspace / "greeting", QUESTION_MARKS, slow=0.3, experiments=40)
    db = workspace / "store.db"
    proc = start_run(folder, db)
    wait_for(lambda: db.exists() and rows(db, "select count(*) n from experiments")[0]["n"] >= 2, what="the run to start")
    proc.send_signal(signal.SIGKILL)  # no chance to record that it stopped
    proc.wait(timeout=10)

    result = cli("pause", "--db", db)

    assert result.exit_code == 1
    assert f"Run 1 is marked running but its process ({proc.pid}) is gone" in result.output
    assert "--resume" in result.output
    assert rows(db, "select control from runs")[0]["control"] is None



def test_a_run_whose_pid_another_program_has_now_is_dead_to_every_command(finished, cli):
    _, db = finished
    other = subprocess.Popen(["sleep", "30"])  # the pid, given to a program that is not overnight
    try:
        with sqlite3.connect(db) as conn:
            conn.execute("update runs set status = 'running', pid = ?, ended_at = null", [other.pid])
        assert "died" in cli("status", "--db", db).output
        paused = cli("pause", "--db", db)
        assert paused.exit_code == 1 and f"its process ({other.pid}) is gone; continue it with `overnight run" in paused.output
        assert "--resume`." in paused.output and rows(db, "select control from runs")[0]["control"] is None
        assert "reads this from its next proposal on" not in cli("steer", "shorter", "--db", db).output
    finally:
        other.kill()
        other.wait()

# -- notes reach the agent ---------------------------------------------------------------


def test_a_note_on_a_rejected_experiment_reaches_the_agent_in_the_next_run(workspace, cli):
    """The loop reads the recipe's notes before every proposal: record what the agent is given."""
    from overnight.core import recipe as recipes
    from overnight.core.runner import build, run

    folder = recipe(workspace / "greeting")
    other = recipe(workspace / "other", name="other")
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    assert cli("reject", "2", "--note", "never make the opening longer", "--db", db).exit_code == 0
    assert cli("steer", "drop words, do not add any", "--db", db).exit_code == 0

    seen: dict[str, list[list[str]]] = {}
    for name, where in (("greeting", folder), ("other", other)):
        store = Store(db)
        setup = build(recipes.load(where), store)
        propose = setup.agent.propose
        setup.agent.propose = lambda context, propose=propose, name=name: seen.setdefault(name, []).append(list(context.notes)) or propose(context)
        run(setup)
        store.close()

    expected = ["A reviewer rejected experiment 1:2 (a warmer opening): never make the opening longer",
                "drop words, do not add any"]
    assert seen["greeting"] and all(notes == expected for notes in seen["greeting"])
    assert seen["other"] and all(notes == [] for notes in seen["other"])  # another recipe's notes stay its own


def test_the_llm_agent_is_told_the_review_note_in_its_request(workspace, cli, llm_server, monkeypatch):
    """The same through the real LLM path: the note is in the request the model receives."""
    from tests.conftest import write

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-control-0123456789")
    llm_server.add_rule("# The current best version", "HYPOTHESIS: shorter\n```\nHi friend, how are you?\n```\n")
    folder = write(workspace / "greeting", {
        "greeting.txt": GREETING,
        "score.py": "import sys\nprint(len(open(sys.argv[1]).read()))\n",
        "recipe.toml": f"""
            [recipe]
            name = "greeting"

            [surface]
            kind = "text"
            path = "greeting.txt"

            [metric]
            kind = "command"
            run = "python3 {{recipe}}/score.py {{file}}"
            goal = "minimize"

            [agent]
            kind = "llm"
            model = "openai/agent-model"
            api_base = "{llm_server.url}"

            [budget]
            experiments = 1
        """,
    })
    assert cli("run", folder, "--yes").exit_code == 0
    assert cli("reject", "1", "--note", "too casual for our customers").exit_code == 0

    assert cli("run", folder, "--yes").exit_code == 0

    first, second = (json.dumps(r["messages"]) for r in llm_server.requests)
    note = "A reviewer rejected experiment 1:1 (shorter): too casual for our customers"
    assert note not in first
    assert note in second


def test_read_only_commands_create_no_store(workspace, cli):
    """status, log, show, export, steer and star in a folder with no store leave it as it was."""
    assert cli("status").output.startswith("No runs in ") and cli("status", "--json").output.strip() == "[]"
    for args in (("log",), ("show", "1"), ("export",), ("steer", "be brief"), ("star", "1")):
        result = cli(*args)
        assert result.exit_code != 0 and "No overnight store at" in result.output, args
    assert not (workspace / ".overnight").exists()
