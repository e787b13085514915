"""Trust before anything runs: asked on a terminal, refused without one, --yes for scripts, asked again on change."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.recipe_sources import recipe_folder

PROMPT = "Trust this recipe and let it run?"


def runs_in(workspace: Path) -> int:
    db = workspace / ".overnight" / "overnight.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


def trusted(home: Path) -> dict:
    file = home / "trust.json"
    return json.loads(file.read_text())["recipes"] if file.exists() else {}


@pytest.fixture
def terminal(monkeypatch):
    """As if stdin were a terminal (click's runner gives a pipe); the pty test below uses a real one."""
    from overnight.sharing import trust

    monkeypatch.setattr(trust, "_terminal", lambda: True)


def test_without_a_terminal_or_yes_it_refuses_and_records_nothing(cli, workspace, overnight_home):
    recipe = recipe_folder(workspace / "note")

    result = cli("run", recipe)

    assert result.exit_code != 0
    assert "Recipe 'longer-note' runs commands or code" in result.output
    assert "run it from a terminal to review and trust it, or pass --yes" in result.output
    assert "Traceback" not in result.output
    assert runs_in(workspace) == 0 and trusted(overnight_home) == {}


def test_yes_accepts_for_that_run_and_shows_what_ran(cli, workspace, overnight_home):
    recipe = recipe_folder(workspace / "note")

    result = cli("run", recipe, "--yes")

    assert result.exit_code == 0, result.output
    assert "[metric] command: shell command in a work folder: wc -c < note.txt" in result.output
    assert runs_in(workspace) == 1
    assert trusted(overnight_home) == {}  # --yes is not a person's recorded decision


def test_the_trust_question_shows_what_a_commands_env_sets(cli, workspace, overnight_home, terminal):
    """`PATH = "."` makes `wc` the recipe's own program: the command alone would not say what runs."""
    from tests.support.recipe_sources import RECIPE

    toml = RECIPE["recipe.toml"].replace('run = "wc -c < note.txt"',
                                         'run = "wc -c < note.txt"\nenv = { PATH = ".:/usr/bin:/bin", API_TOKEN = "t0k3n-value" }')
    recipe = recipe_folder(workspace / "note", **{"recipe.toml": toml, "wc": "#!/bin/sh\necho 1\n"})

    result = cli("run", recipe, input="n\n")

    assert ("[metric] command: shell command in a work folder: wc -c < note.txt (with PATH=.:/usr/bin:/bin, API_TOKEN=***)"
            in result.output), result.output
    assert "t0k3n-value" not in result.output and runs_in(workspace) == 0


def test_on_a_terminal_it_shows_what_runs_and_a_no_runs_nothing(cli, workspace, overnight_home, terminal):
    recipe = recipe_folder(workspace / "note")

    result = cli("run", recipe, input="n\n")

    assert result.exit_code != 0
    assert "wc -c < note.txt" in result.output and PROMPT in result.output
    assert "was not trusted: nothing was run" in result.output
    assert runs_in(workspace) == 0 and trusted(overnight_home) == {}


def test_trust_is_kept_and_asked_again_only_when_the_recipe_changes(cli, workspace, overnight_home, terminal):
    recipe = recipe_folder(workspace / "note")

    first = cli("run", recipe, input="y\n")
    assert first.exit_code == 0, first.output
    assert PROMPT in first.output and "Kept 1 of 1" in first.output
    assert len(trusted(overnight_home)) == 1

    second = cli("run", recipe)
    assert second.exit_code == 0, second.output
    assert PROMPT not in second.output

    # Applying a change to the surface is what overnight is for: no new question.
    applied = cli("apply", "1:1")
    assert applied.exit_code == 0, applied.output
    assert "longer note" in (recipe / "note.txt").read_text()
    third = cli("run", recipe)
    assert third.exit_code == 0 and PROMPT not in third.output

    # A change to what runs asks again, and says why.
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace("wc -c < note.txt", "wc -w < note.txt"))
    changed = cli("run", recipe, input="n\n")
    assert changed.exit_code != 0
    assert "This recipe changed since you trusted it" in changed.output
    assert "wc -w < note.txt" in changed.output

    # So does a change to any other file of the recipe (a script the command could call).
    toml.write_text(toml.read_text().replace("wc -w", "wc -c"))
    assert PROMPT not in cli("run", recipe).output
    (recipe / "helper.sh").write_text("echo 1\n")
    assert cli("run", recipe).exit_code != 0


def test_a_file_named_outside_the_folder_is_part_of_the_digest(cli, workspace, overnight_home):
    from overnight.sharing import trust
    from overnight.core.recipe import load

    (workspace / "shared.py").write_text("print(1)\n")
    recipe = recipe_folder(workspace / "note", **{"recipe.toml": """
        [recipe]
        name = "outside"
        [surface]
        kind = "text"
        path = "note.txt"
        [metric]
        kind = "command"
        run = "python3 ../shared.py"
        [agent]
        kind = "scripted"
        file = "proposals.jsonl"
    """})
    before = trust.digest(load(recipe))
    (workspace / "shared.py").write_text("import os\nprint(2)\n")
    assert trust.digest(load(recipe)) != before

    # A metric's own file, though, must be the recipe's: one sentence, naming key, value and place.
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('kind = "command"\nrun = "python3 ../shared.py"', 'kind = "python"\nfile = "../shared.py"'))
    result = cli("recipes", "validate", recipe)
    assert result.exit_code == 2
    assert f"[metric] file: file = '../shared.py' resolves to {(workspace / 'shared.py').resolve()}, outside the recipe folder" in result.output


def judged(folder: Path, api_base: str | None = None) -> Path:
    """A recipe whose metric is a model judging the text: it sends data to the model's host."""
    from tests.conftest import write

    where = f'api_base = "{api_base}"' if api_base else ""
    return write(folder, {
        "subject.txt": "Our news\n",
        "proposals.jsonl": '{"view": "Our spring news\\n"}\n',
        "recipe.toml": f"""
            [recipe]
            name = "{folder.name}"
            [surface]
            kind = "text"
            path = "subject.txt"
            [metric]
            kind = "judge"
            rubric = "Clear and short."
            model = "openai/gpt-4o-mini"
            {where}
            [agent]
            kind = "scripted"
            file = "proposals.jsonl"
            """,
    })


def test_an_llm_recipe_asks_for_trust_and_lists_the_host_and_key(cli, workspace, overnight_home, terminal):
    folder = judged(workspace / "sl")

    result = cli("run", folder, input="n\n")

    assert result.exit_code != 0
    assert "reaches beyond its folder" in result.output
    assert ("[metric] judge: sends OPENAI_API_KEY and your prompt to https://api.openai.com/v1 "
            "(model openai/gpt-4o-mini, the provider's own host)") in result.output
    assert trusted(overnight_home) == {}


def test_a_host_hidden_behind_a_user_name_is_named_as_the_host(cli, workspace, overnight_home, terminal):
    """`http://api.openai.com@elsewhere/v1` sends to elsewhere: the prompt says so, not the name before '@'."""
    folder = judged(workspace / "hidden", api_base="http://api.openai.com@127.0.0.1:9/v1")
    shown = cli("recipes", "show", folder)
    assert shown.exit_code == 0, shown.output
    assert ("[metric] judge: sends OPENAI_API_KEY and your prompt to 127.0.0.1:9 (the address "
            "http://api.openai.com@127.0.0.1:9/v1 names a user before its '@'; the host is what follows)") in shown.output
    refused = cli("run", folder, input="n\n")  # the prompt on a terminal, answered no
    assert refused.exit_code != 0 and "to 127.0.0.1:9 (the address" in refused.output
    assert trusted(overnight_home) == {}


def test_recipes_trust_records_it_and_list_shows_it(cli, workspace, overnight_home):
    cli("recipes", "install", recipe_folder(workspace / "src"))
    assert json.loads(cli("recipes", "list", "--json").output)[-1]["trusted"] is False

    result = cli("recipes", "trust", "longer-note", "--yes")

    assert result.exit_code == 0, result.output
    row = [r for r in json.loads(cli("recipes", "list", "--json").output) if r["name"] == "longer-note"][0]
    assert row["trusted"] is True
    # The copy a run by name makes has the same digest: trusted already.
    run = cli("run", "longer-note")
    assert run.exit_code == 0, run.output
    assert PROMPT not in run.output


def test_a_recipe_that_runs_no_code_is_never_asked(workspace):
    from overnight.sharing import trust
    from overnight.sharing.library import lookup
    from overnight.core.recipe import load

    no_code = [e for e in (lookup(n) for n in ("pricing", "triage", "loan")) if e]
    assert no_code, "a bundled recipe that runs no code"
    recipe = load(no_code[0].path)
    assert trust.what_runs(recipe) == []
    trust.ensure_trusted(recipe, None, False)  # no terminal, no --yes: still fine


def test_when_trust_cannot_be_imported_no_command_runs_the_recipe(cli, workspace, overnight_home, monkeypatch):
    recipe = recipe_folder(workspace / "note")
    assert cli("run", recipe, "--yes").exit_code == 0  # a run that kept a change, for explain

    # An import bug in the trust module: every command stops with it, none skips the prompt and runs.
    monkeypatch.setitem(sys.modules, "overnight.sharing.trust", None)
    for args in (("run", recipe, "--yes"), ("check", recipe, "--yes"), ("explain", "--yes")):
        with pytest.raises(ImportError):
            cli(*args)
    assert runs_in(workspace) == 1


def test_a_real_terminal_is_asked_and_the_answer_recorded(workspace, overnight_home):
    recipe = recipe_folder(workspace / "note")
    env = {**os.environ, "OVERNIGHT_HOME": str(overnight_home), "OVERNIGHT_DB": str(workspace / "run.db")}
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from overnight.cli.main import main; main()", "run", str(recipe)],
        stdin=slave, stdout=slave, stderr=slave, cwd=workspace, env=env, close_fds=True,
    )
    os.close(slave)
    seen = b""
    answered = False
    seen_at = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and PROMPT.encode() in seen:
                os.write(master, b"y\n")
                answered = True
                seen_at = len(seen)
            elif answered and seen.rstrip().endswith(b"]:") and len(seen) > seen_at:
                # Any later question of the run (not about trust) is declined.
                os.write(master, b"n\n")
                seen_at = len(seen)
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    text = seen.decode(errors="replace")
    assert answered, text
    assert code == 0, text
    assert "wc -c < note.txt" in text and "Kept 1 of 1" in text
    assert len(trusted(overnight_home)) == 1


def test_a_store_kept_in_the_recipe_folder_is_overnights_own_not_the_recipes(cli, workspace, overnight_home, terminal):
    """`--db` inside the recipe folder: trust leaves the run's store out (runs write it), so a trusted
    recipe is not asked about again after each run; and no work folder receives it. A database the
    recipe itself holds is the recipe's, even one that says in its header that it is an overnight
    store: trust knows a store by the run that writes it, never by the file alone."""
    from overnight.core.store import Store, is_store

    recipe = recipe_folder(workspace / "note")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace("wc -c < note.txt", "test ! -e mine.db && wc -c < note.txt"))
    db = recipe / "mine.db"

    first = cli("run", recipe, "--db", db, input="y\n")
    assert first.exit_code == 0, first.output
    assert PROMPT in first.output and "Kept 1 of 1" in first.output  # the metric never saw mine.db
    assert is_store(db)

    again = cli("run", recipe, "--db", db)
    assert again.exit_code == 0, again.output
    assert PROMPT not in again.output and "Kept 1 of 1" in again.output

    # The record knows the store: a command that is given no store (`recipes show`) sees it trusted too.
    assert trusted(overnight_home)[str((recipe / "recipe.toml").resolve())]["stores"] == ["mine.db"]

    Store(recipe / "shipped.db").close()  # an overnight store, but no run of this recipe writes it
    assert is_store(recipe / "shipped.db")
    shipped = cli("run", recipe, "--db", db)
    assert shipped.exit_code != 0 and "shipped.db" in shipped.output
