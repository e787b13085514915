"""The `command` agent: any program proposes, and the loop decides.

Each story writes a recipe whose agent is a small Python script standing in for a
coding agent (Claude Code, Codex, aider), runs it with `overnight run`, and checks
what the store says, what the script was given, and that nothing of the person's
was written.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import write

NOTE = "Our service is utilized by many people in order to facilitate their work.\n"

SCORE = '''
WORDS = ["utilized", "in order to", "facilitate"]

def score(path):
    text = open(path).read()
    examples = [{"id": w, "input": w, "output": text.strip(), "expected": f"no '{w}'",
                 "score": 0.0 if w in text else 1.0, "feedback": f"drop '{w}'" if w in text else ""} for w in WORDS]
    return {"score": sum(e["score"] for e in examples) / len(examples), "examples": examples}
'''

# Replaces the first jargon word the brief says fails; copies the brief where the test can read it.
EDITOR = '''
import os, re, shutil, sys
brief, target = sys.argv[1], sys.argv[2]
if os.environ.get("COPY_BRIEF"):
    shutil.copy(brief, os.environ["COPY_BRIEF"] + f".{len(os.listdir(os.path.dirname(os.environ['COPY_BRIEF'])))}")
text = open(target).read()
plain = {"utilized": "used", "in order to": "to", "facilitate": "ease"}
for word in re.findall(r"Feedback: drop '(.*)'", open(brief).read()):
    if word in text:
        open(target, "w").write(text.replace(word, plain[word]))
        print(f"some chatter first\\nHYPOTHESIS: say '{plain[word]}', not '{word}'\\nmore chatter")
        sys.exit(0)
print("DONE")
'''


def recipe(folder: Path, run: str = "{python} editor.py {brief} {file}", agent: str = "", budget: str = "experiments = 10",
           files: dict | None = None) -> Path:
    return write(folder, {
        "note.txt": NOTE,
        "score.py": SCORE,
        "editor.py": EDITOR,
        "program.md": "Plain words only.\n",
        **(files or {}),
        "recipe.toml": f"""
            [recipe]
            name = "{folder.name}"

            [surface]
            kind = "text"
            path = "note.txt"

            [metric]
            kind = "python"
            file = "score.py"

            [agent]
            kind = "command"
            run = "{run}"
            instructions = "program.md"
            {agent}

            [budget]
            {budget}
            """,
    })


def rows(workspace: Path, sql: str, args=()) -> list[dict]:
    conn = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def test_a_script_proposes_until_it_is_done_and_the_loop_keeps_what_scores_better(cli, workspace):
    copies = workspace / "briefs"
    copies.mkdir()
    folder = recipe(workspace / "note", agent=f'env = {{ COPY_BRIEF = "{copies / "brief"}" }}')

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert "[agent] command: command run for each proposal, in a work folder: {python} editor.py {brief} {file}" in result.output
    assert "finished: the agent has no more proposals" in result.output
    exps = rows(workspace, "select * from experiments order by seq")
    assert [(e["status"], e["rationale"]) for e in exps] == [
        ("baseline", "baseline"), ("keep", "say 'used', not 'utilized'"),
        ("keep", "say 'to', not 'in order to'"), ("keep", "say 'ease', not 'facilitate'")]
    assert exps[-1]["score"] == 1.0
    assert "$ " in exps[1]["agent_trace"] and "some chatter first" in exps[1]["agent_trace"]
    assert (folder / "note.txt").read_text() == NOTE  # the person's file is written only by apply
    # What the script was given: the brief of the second proposal, with what the first one did.
    brief = sorted(copies.iterdir())[1].read_text()
    assert "Improve the file `note.txt` in this folder" in brief
    assert "# Instructions from the person who runs this\nPlain words only." in brief
    assert "## Example in order to (score 0; current best)" in brief and "Feedback: drop 'in order to'" in brief
    assert "## Example utilized" not in brief  # fixed by the kept change: the best no longer fails it
    assert "- #1 keep score 0.333333 (+0.333333 vs the original): say 'used', not 'utilized'" in brief
    assert "Best score so far: 0.333333" in brief


def test_the_hypothesis_may_come_from_a_file_the_command_writes(cli, workspace):
    script = "import sys; open(sys.argv[1], 'a').write('Plain.\\n'); open('HYPOTHESIS.txt', 'w').write('\\nend on a plain word\\n')"
    folder = recipe(workspace / "note", run="{python} tweak.py {file}", budget="experiments = 1", files={"tweak.py": script})

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    exp = rows(workspace, "select * from experiments where seq = 1")[0]
    assert exp["rationale"] == "end on a plain word" and exp["status"] == "discard"


@pytest.mark.parametrize("script, reason", [
    ("import sys; print('thinking'); print('gave up', file=sys.stderr); sys.exit(3)", "the command exited with code 3: gave up"),
    ("print('HYPOTHESIS: nothing to change')", "the command left note.txt unchanged"),
    ("import os, sys; os.remove(sys.argv[1])", "the command deleted note.txt"),
])
def test_a_command_that_fails_or_changes_nothing_makes_an_invalid_proposal(cli, workspace, script, reason):
    folder = recipe(workspace / "note", run="{python} agent.py {file}", budget="experiments = 2", files={"agent.py": script})

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    exps = rows(workspace, "select * from experiments where seq > 0 order by seq")
    assert [e["status"] for e in exps] == ["invalid", "invalid"]
    assert exps[0]["reason"] == f"the agent's proposal could not be used: {reason}"


def test_a_command_past_its_time_limit_is_killed_with_all_it_started(cli, workspace):
    script = "import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\ntime.sleep(30)\n"
    folder = recipe(workspace / "note", run="{python} slow.py", agent="timeout = 1", budget="experiments = 1",
                    files={"slow.py": script})

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    exp = rows(workspace, "select * from experiments where seq = 1")[0]
    assert exp["status"] == "invalid"
    assert exp["reason"] == "the agent's proposal could not be used: the command took longer than 1 s (agent timeout)"
    assert float(rows(workspace, "select seconds from runs")[0]["seconds"]) < 20


def test_only_the_candidate_is_taken_and_other_edits_are_named(cli, workspace):
    # A "coding agent" that also rewrites the scorer to report a perfect score: it changes nothing that counts.
    script = ("import sys\nopen(sys.argv[1], 'a').write('More words.\\n')\n"
              "open('score.py', 'w').write('def score(path):\\n    return 1.0\\n')\nprint('HYPOTHESIS: add a line')\n")
    folder = recipe(workspace / "note", run="{python} cheat.py {file}", budget="experiments = 1", files={"cheat.py": script})

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    exp = rows(workspace, "select * from experiments where seq = 1")[0]
    assert exp["status"] == "discard" and exp["score"] == 0.0  # measured with the recipe's own scorer
    assert "(only note.txt is taken; the command's changes to score.py were thrown away)" in exp["agent_trace"]
    assert "return 1.0" not in (folder / "score.py").read_text()


def test_the_command_agent_is_trusted_like_a_command_metric(cli, workspace):
    folder = recipe(workspace / "note")

    refused = cli("run", folder)
    shown = cli("recipes", "show", folder)

    assert refused.exit_code != 0 and "runs commands or code (2 listed" in refused.output
    assert not (workspace / ".overnight" / "overnight.db").exists() or not rows(workspace, "select * from runs")
    assert "command run for each proposal, in a work folder: {python} editor.py {brief} {file}" in shown.output


@pytest.mark.parametrize("run, agent, message", [
    ("no-such-coding-agent -p {brief}", "",
     "The agent command 'no-such-coding-agent' was not found (agent run = 'no-such-coding-agent -p {brief}')."),
    ("claude -p 'unclosed", "", "The agent command \"claude -p 'unclosed\" cannot be parsed: No closing quotation."),
    ("{python} editor.py {brief} {file}", 'instructions = "nope.md"', "(agent instructions = 'nope.md')."),
    # Removed before each proposal: a path out of the work folder would delete a file there.
    ("{python} editor.py {brief} {file}", 'hypothesis_file = "/tmp/not-yours.txt"',
     "[agent] hypothesis_file: "),
    ("{python} editor.py {brief} {file}", 'hypothesis_file = "../../not-yours.txt"',
     "only the surface's path of a recipe you wrote may point outside it."),
])
def test_a_mistake_in_the_agent_section_is_named_before_anything_runs(cli, workspace, run, agent, message):
    folder = recipe(workspace / "note", run=run.replace('"', '\\"'), agent=agent)
    if agent:
        text = (folder / "recipe.toml").read_text()
        (folder / "recipe.toml").write_text(text.replace('instructions = "program.md"\n', ""))

    result = cli("run", folder, "--yes")

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert message in result.output
    assert not (workspace / ".overnight" / "overnight.db").exists() or not rows(workspace, "select * from runs")


def test_a_surface_whose_file_is_not_its_text_is_refused(cli, workspace):
    from overnight.sharing.library import lookup

    cli("recipes", "use", "pricing", "pricing")
    toml = workspace / "pricing" / "recipe.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("[agent]")] + '[agent]\nkind = "command"\nrun = "true"\n')
    assert lookup("pricing").path != workspace / "pricing"

    result = cli("run", workspace / "pricing", "--yes")

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "The command agent edits the candidate as a text file, and a 'spreadsheet' surface's file is not its text" in result.output


def test_the_command_agent_reads_only_its_own_keys(cli, workspace):
    folder = recipe(workspace / "note", agent="pattern = 'x'")

    result = cli("recipes", "validate", folder)

    assert result.exit_code != 0
    assert "unknown key 'pattern'" in result.output and "[agent]" in result.output


def test_the_python_placeholder_is_the_python_overnight_runs_on(tmp_path):
    from overnight.plugins.command_agent import CommandAgent
    from overnight.core.options import check

    agent = CommandAgent(check({"run": "{python} a.py {brief} {file} {folder}"}, CommandAgent.options).values, tmp_path)

    command = agent.command(tmp_path / "OVERNIGHT_BRIEF.md", tmp_path / "my file.txt", tmp_path)

    assert command.startswith(sys.executable) and f"'{tmp_path / 'my file.txt'}'" in command
