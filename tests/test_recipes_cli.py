"""`overnight recipes list | show | use | init | validate`, and running a recipe by its name."""

from __future__ import annotations

import json
from pathlib import Path

import tomlkit

from tests.conftest import write
from tests.support.recipe_sources import recipe_folder


def bundled_digest(name: str) -> str:
    from overnight.sharing.library import folder_digest, lookup

    return folder_digest(lookup(name).path)


# -- list and show ---------------------------------------------------------------------


def test_list_shows_each_recipe_with_its_kinds_llm_code_and_trust(cli, workspace):
    result = cli("recipes", "list")

    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split()[:3] == ["NAME", "FROM", "SURFACE"]
    loan = next(line for line in lines if line.startswith("loan "))
    assert "spreadsheet / cell / search" in loan and "bundled" in loan
    speedup = next(line for line in lines if line.startswith("speedup "))
    assert speedup.split()[7:10] == ["yes", "yes", "no"]  # needs an LLM, runs code, not trusted yet


def test_list_json_has_every_field(cli, workspace):
    rows = json.loads(cli("recipes", "list", "--json").output)

    sim = next(r for r in rows if r["name"] == "sim-config")
    assert sim["origin"] == "bundled" and sim["summary"]
    assert (sim["surface"], sim["metrics"], sim["guards"], sim["agent"]) == ("config", ["command"], ["command"], "search")
    assert sim["uses_llm"] is False and sim["runs_code"] is True and sim["trusted"] is False
    assert any("{python} simulate.py {file} overshoot" in line for line in sim["runs"])


def test_show_prints_the_recipe_its_files_and_what_it_runs(cli, workspace):
    result = cli("recipes", "show", "speedup")

    assert result.exit_code == 0, result.output
    assert 'name = "speedup"' in result.output  # the recipe.toml itself
    for name in ("primes.py", "bench.py", "check.py", "program.md", "README.md"):
        assert name in result.output
    assert "[metric] command: shell command in a work folder: {python} bench.py" in result.output
    assert "[guards #1] command: shell command in a work folder: {python} check.py" in result.output
    assert "Needs an LLM: yes" in result.output


def test_list_and_show_say_where_a_recipe_sends_data(cli, workspace):
    listed = cli("recipes", "list")
    subject = next(line for line in listed.output.splitlines() if line.startswith("subject-lines "))
    assert "api.openai.com (OPENAI_API_KEY)" in subject
    loan = next(line for line in listed.output.splitlines() if line.startswith("loan "))
    assert "api.openai.com" not in loan

    shown = cli("recipes", "show", "subject-lines")
    assert "Sends data to:" in shown.output
    assert "[agent] llm: sends OPENAI_API_KEY and your prompt to https://api.openai.com/v1" in shown.output
    assert "Trust: not trusted yet" in shown.output
    assert "Sends data to: nobody" in cli("recipes", "show", "loan").output
    assert "Trust: not needed" in cli("recipes", "show", "loan").output


def test_show_takes_a_path_and_an_unknown_name_is_named(cli, workspace):
    folder = recipe_folder(workspace / "mine")
    assert "wc -c < note.txt" in cli("recipes", "show", folder).output
    result = cli("recipes", "show", "no-such-recipe")
    assert result.exit_code != 0
    assert "No recipe named or at 'no-such-recipe'" in result.output


NOTIFY = '\n[notify]\nurls = ["mailto://me:app-password@gmail.com", "json://night:s3cret@hooks.example.org/run"]\n'


def test_list_says_where_a_recipe_sends_notifications_masked(cli, workspace, monkeypatch):
    """Only a person's own recipe may name notification URLs (an installed or bundled one cannot
    be read with them), so the list is given one as a library would."""
    from overnight.sharing import library

    folder = recipe_folder(workspace / "mine")
    (folder / "recipe.toml").write_text((folder / "recipe.toml").read_text() + NOTIFY)
    monkeypatch.setattr(library, "entries", lambda: [library.Entry("mine", folder, "folder")])

    listed = cli("recipes", "list").output
    as_json = cli("recipes", "list", "--json").output

    line = next(line for line in listed.splitlines() if line.startswith("mine "))
    assert "mailtos://me:****@gmail.com/, json://night:****@hooks.example.org/run" in line
    assert "app-password" not in listed + as_json and "s3cret" not in listed + as_json
    assert json.loads(as_json)[0]["notify"] == ["mailtos://me:****@gmail.com/", "json://night:****@hooks.example.org/run"]


def test_an_installed_recipe_naming_notification_urls_is_listed_as_unreadable_without_them(cli, workspace, overnight_home):
    folder = recipe_folder(overnight_home / "recipes" / "noisy")
    (folder / "recipe.toml").write_text((folder / "recipe.toml").read_text() + NOTIFY)

    listed, as_json = cli("recipes", "list").output, cli("recipes", "list", "--json").output

    line = next(line for line in listed.splitlines() if line.startswith("noisy "))
    assert "cannot be read:" in line and "[notify] urls: an installed or bundled recipe does not choose" in line
    assert "app-password" not in listed + as_json and "s3cret" not in listed + as_json


def test_a_recipe_that_cannot_be_read_is_listed_with_its_problem(cli, workspace, overnight_home):
    broken = recipe_folder(overnight_home / "recipes" / "broken")
    toml = broken / "recipe.toml"
    toml.write_text(toml.read_text().replace('kind = "scripted"', 'kind = "nobody"'))

    result = cli("recipes", "list")

    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.startswith("broken "))
    assert "cannot be read:" in line and "Unknown agent kind 'nobody'" in line


# -- use --------------------------------------------------------------------------------


def test_use_copies_a_bundled_recipe_into_dot_name_by_default(cli, workspace):
    before = bundled_digest("loan")

    result = cli("recipes", "use", "loan")

    assert result.exit_code == 0, result.output
    assert (workspace / "loan" / "loan.xlsx").exists()
    assert "overnight run loan" in result.output
    assert bundled_digest("loan") == before


def test_use_refuses_an_unknown_name_and_a_folder_that_is_not_empty(cli, workspace):
    unknown = cli("recipes", "use", "ghost")
    assert unknown.exit_code != 0
    assert "There is no bundled or installed recipe named 'ghost'" in unknown.output

    write(workspace / "taken", {"notes.txt": "mine\n"})
    taken = cli("recipes", "use", "loan", "taken")
    assert taken.exit_code != 0 and "already exists and is not empty" in taken.output
    assert sorted(p.name for p in (workspace / "taken").iterdir()) == ["notes.txt"]


# -- running by name ------------------------------------------------------------------------


def test_run_by_name_copies_first_then_runs_the_copy_from_then_on(cli, workspace):
    before = bundled_digest("loan")

    first = cli("run", "loan", "--quiet")

    assert first.exit_code == 0, first.output
    assert "Copied the bundled recipe 'loan' into ./loan" in first.output
    assert bundled_digest("loan") == before  # the bundled recipe is never written

    # The copy is the person's: an edit to it counts, and it is never overwritten.
    toml = workspace / "loan" / "recipe.toml"
    doc = tomlkit.parse(toml.read_text())
    doc["budget"]["experiments"] = 3
    toml.write_text(tomlkit.dumps(doc))
    second = cli("run", "loan", "--quiet")
    assert second.exit_code == 0, second.output
    assert "Copied" not in second.output
    assert "experiment budget reached (3)" in second.output


def test_run_by_name_refuses_a_folder_of_that_name_that_is_not_a_recipe(cli, workspace):
    write(workspace / "loan", {"taxes.txt": "my own notes\n"})

    result = cli("run", "loan")

    assert result.exit_code != 0
    assert "./loan exists but holds no recipe.toml" in result.output
    assert sorted(p.name for p in (workspace / "loan").iterdir()) == ["taxes.txt"]


def test_run_of_an_unknown_name_says_where_it_looked(cli, workspace):
    result = cli("run", "nothing-like-this")
    assert result.exit_code != 0
    assert "nor a bundled or installed recipe (see `overnight recipes list`)" in result.output


# -- validate -------------------------------------------------------------------------------


def test_validate_reports_every_problem_at_once_with_line_and_key(cli, workspace):
    folder = write(workspace / "bad", {
        "note.txt": "hi\n",
        "recipe.toml": """
            [recipe]
            name = "bad"

            [surface]
            kind = "txt"
            path = "note.txt"

            [metric]
            kind = "command"
            goal = "up"

            [agent]
            kind = "scripted"
            file = "proposals.jsonl"

            [budget]
            parallel = 0
            """,
    })
    before = (folder / "recipe.toml").read_text()

    result = cli("recipes", "validate", folder)

    assert result.exit_code == 2
    assert "5 problems in" in result.output
    assert "recipe.toml:5: [surface] kind: Unknown surface kind 'txt'. Did you mean 'text'?" in result.output
    assert "recipe.toml:8: [metric]: missing key 'run'" in result.output
    assert "recipe.toml:10: [metric] goal: 'goal' must be one of 'maximize', 'minimize', not 'up'" in result.output
    assert "recipe.toml:17: [budget] parallel: 'parallel' must be at least 1, not 0" in result.output
    # The sections that could be read are checked in the same pass: the agent's missing file shows too.
    assert "recipe.toml:12: [agent]: The proposals file" in result.output
    assert "Traceback" not in result.output
    assert (folder / "recipe.toml").read_text() == before


def test_validate_also_finds_missing_files(cli, workspace):
    folder = recipe_folder(workspace / "gaps")
    (folder / "note.txt").unlink()
    (folder / "proposals.jsonl").unlink()

    result = cli("recipes", "validate", folder)

    assert result.exit_code == 2
    assert "2 problems" in result.output
    assert "[surface]: The surface file" in result.output and "note.txt does not exist" in result.output
    assert "[agent]: The proposals file" in result.output


def test_validate_reports_a_bad_goal_beside_an_unknown_kind_and_a_missing_file_in_one_pass(cli, workspace):
    folder = write(workspace / "gaps", {
        "recipe.toml": """
            [recipe]
            name = "gaps"

            [surface]
            kind = "text"
            path = "missing.txt"

            [metric]
            kind = "text-stat"
            goal = "maximise"

            [agent]
            kind = "scripted"
            file = "nope.jsonl"
            """,
    })

    result = cli("recipes", "validate", folder)

    assert result.exit_code == 2
    assert "4 problems in" in result.output
    assert "[metric] goal: 'goal' must be one of 'maximize', 'minimize', not 'maximise'" in result.output
    assert "[metric] kind: Unknown metric kind 'text-stat'. Did you mean 'text-stats'?" in result.output
    assert "[surface]: The surface file" in result.output and "missing.txt does not exist" in result.output
    assert "[agent]: The proposals file" in result.output and "nope.jsonl does not exist" in result.output
    assert "Traceback" not in result.output


def test_validate_a_good_recipe_and_a_missing_path(cli, workspace):
    ok = cli("recipes", "validate", recipe_folder(workspace / "ok"))
    assert ok.exit_code == 0 and "is a valid recipe 'longer-note'" in ok.output
    missing = cli("recipes", "validate", workspace / "nowhere")
    assert missing.exit_code != 0 and "No recipe named or at" in missing.output


# -- init -----------------------------------------------------------------------------------


def test_init_writes_a_commented_recipe_from_options(cli, workspace):
    result = cli("recipes", "init", "fresh", "--surface", "text", "--metric", "text-stats", "--agent", "scripted")

    assert result.exit_code == 0, result.output
    text = (workspace / "fresh" / "recipe.toml").read_text()
    doc = tomlkit.parse(text).unwrap()
    assert doc["recipe"]["name"] == "fresh"
    assert (doc["surface"]["kind"], doc["metric"]["kind"], doc["agent"]["kind"]) == ("text", "text-stats", "scripted")
    assert doc["surface"]["path"] == "TODO" and "# TODO: the file to improve" in text
    assert "# stat = \"reading_ease\"" in text  # optional keys shown, commented, with defaults
    assert doc["budget"]["experiments"] == 50

    # Filled in, it validates.
    write(workspace / "fresh", {"draft.txt": "Hello there.\n", "proposals.jsonl": '{"view": "Hi.\\n"}\n'})
    filled = text.replace('path = "TODO"', 'path = "draft.txt"').replace('file = "TODO"', 'file = "proposals.jsonl"')
    (workspace / "fresh" / "recipe.toml").write_text(filled)
    assert cli("recipes", "validate", "fresh").exit_code == 0


def test_init_asks_for_what_it_was_not_given(cli, workspace):
    result = cli("recipes", "init", "asked", "--name", "my-first", input="config\ncommand\nsearch\n")

    assert result.exit_code == 0, result.output
    assert "Which surface?" in result.output and "spreadsheet" in result.output  # the choices are listed
    doc = tomlkit.parse((workspace / "asked" / "recipe.toml").read_text()).unwrap()
    assert doc["recipe"]["name"] == "my-first"
    assert (doc["surface"]["kind"], doc["metric"]["kind"], doc["agent"]["kind"]) == ("config", "command", "search")


def test_init_never_writes_over_a_recipe_and_names_an_unknown_kind(cli, workspace):
    folder = recipe_folder(workspace / "have")
    before = (folder / "recipe.toml").read_text()
    again = cli("recipes", "init", folder, "--surface", "text", "--metric", "command", "--agent", "scripted")
    assert again.exit_code != 0 and "already exists" in again.output
    assert (folder / "recipe.toml").read_text() == before

    unknown = cli("recipes", "init", "other", "--surface", "txt", "--metric", "command", "--agent", "scripted")
    assert unknown.exit_code != 0
    assert "Unknown surface kind 'txt'. Did you mean 'text'?" in unknown.output
    assert not Path(workspace / "other" / "recipe.toml").exists()


def test_list_in_a_fresh_process_reads_recipes_with_the_standard_toml_parser(workspace, overnight_home):
    # tomlkit (ten times slower to read) is for writing recipes and for saying where one is broken.
    import os
    import subprocess
    import sys

    probe = ("import sys\nsys.argv = ['overnight', 'recipes', 'list']\nfrom overnight.cli.main import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('@@', sorted(m for m in ('tomlkit', 'sqlite_utils', 'litellm', 'formulas', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=workspace,
                          env={**os.environ, "OVERNIGHT_HOME": str(overnight_home)})
    assert done.returncode == 0, done.stderr
    listed, imported = done.stdout.split("@@")
    assert "subject-lines " in listed and "api.openai.com (OPENAI_API_KEY)" in listed
    assert imported.strip() == "[]"
