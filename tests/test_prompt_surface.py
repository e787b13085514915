"""The `prompt` surface: a template with named inputs, checked before anything is measured.

A proposal that no longer parses, drops an input or reads a variable that is not
an input is never measured; the person's own file is read, never written, until
an explicit apply, which keeps the previous version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overnight.core.errors import OvernightError
from overnight.core.store import Store
from overnight.plugins import templating
from overnight.plugins.prompt import PromptSurface
from tests.conftest import write

TEMPLATE = """\
Classify the ticket.

Subject: {{ subject }}
{% if body %}
{{ body }}
{% endif %}
Category:
"""


def surface(folder: Path, text: str = TEMPLATE, **options) -> PromptSurface:
    write(folder, {"prompt.j2": text})
    return PromptSurface({"path": "prompt.j2", "inputs": ["subject", "body"], "format": "jinja", **options}, folder)


def test_reads_a_template_and_says_what_to_keep(tmp_path):
    s = surface(tmp_path)
    assert s.read() == TEMPLATE
    rules = s.rules()
    assert "{{ subject }}" in rules and "{{ body }}" in rules and "Jinja2" in rules
    assert s.problems(TEMPLATE.replace("Classify", "Sort"), TEMPLATE) == []


def test_a_proposal_that_no_longer_parses_is_rejected_with_its_line(tmp_path):
    s = surface(tmp_path)
    s.read()
    broken = TEMPLATE.replace("{% endif %}", "{% endfor %}")
    problems = s.problems(broken, TEMPLATE)
    assert len(problems) == 1
    assert problems[0].startswith("the template no longer parses: line 6:")
    assert "endfor" in problems[0]


def test_a_proposal_that_drops_an_input_is_rejected(tmp_path):
    s = surface(tmp_path)
    s.read()
    problems = s.problems("Classify: {{ subject }}\n", TEMPLATE)
    assert problems == ["it drops the declared input {{ body }}"]


def test_a_proposal_that_reads_an_unknown_variable_is_rejected(tmp_path):
    s = surface(tmp_path)
    s.read()
    problems = s.problems(TEMPLATE + "Customer: {{ customer_name }}\n", TEMPLATE)
    assert problems == ["it uses {{ customer_name }}, which is not a declared input ({{ subject }}, {{ body }})"]


def test_loop_variables_and_set_names_are_not_inputs(tmp_path):
    s = surface(tmp_path)
    s.read()
    view = "{% set labels = ['a', 'b'] %}{% for l in labels %}{{ loop.index }} {{ l }}\n{% endfor %}{{ subject }} {{ body }}\n"
    assert s.problems(view, TEMPLATE) == []


def test_inputs_default_to_the_variables_the_file_uses(tmp_path):
    write(tmp_path, {"p.j2": "Q: {{ question }}\nContext: {{ context }}\n"})
    s = PromptSurface({"path": "p.j2", "inputs": None, "format": "jinja"}, tmp_path)
    s.read()
    assert s.inputs == ["context", "question"]
    assert s.problems("Q: {{ question }}\n", "") == ["it drops the declared input {{ context }}"]


def test_the_users_own_broken_template_is_an_error_naming_file_and_line(tmp_path):
    s = surface(tmp_path, "Hello {{ subject }\n{{ body }}\n")
    with pytest.raises(OvernightError) as err:
        s.read()
    assert str(tmp_path / "prompt.j2") in err.value.message
    assert "line 1" in err.value.message


def test_a_declared_input_missing_from_the_users_file_is_an_error(tmp_path):
    s = surface(tmp_path, "Subject: {{ subject }}\n")
    with pytest.raises(OvernightError, match=r"does not use the declared input \{\{ body \}\}"):
        s.read()


def test_text_format_fills_named_braces_and_leaves_json_alone(tmp_path):
    text = 'Answer as JSON like {"label": "bug"}.\nTicket: {ticket}\n'
    write(tmp_path, {"p.txt": text})
    s = PromptSurface({"path": "p.txt", "inputs": ["ticket"], "format": "text"}, tmp_path)
    assert s.read() == text
    assert s.problems("Ticket: {ticket}\n", text) == []
    assert s.problems('Answer as JSON like {"label": "bug"}.\n', text) == ["it drops the declared input {ticket}"]
    rendered = templating.render(text, {"ticket": "App crashes"}, "text")
    assert rendered == 'Answer as JSON like {"label": "bug"}.\nTicket: App crashes\n'


def test_materialize_writes_only_into_the_work_folder(tmp_path):
    s = surface(tmp_path / "recipe")
    work = tmp_path / "work"
    work.mkdir()
    new = TEMPLATE.replace("Classify", "Route")
    artifact = s.materialize(new, work)
    assert artifact == work / "prompt.j2"
    assert artifact.read_text() == new
    assert (tmp_path / "recipe" / "prompt.j2").read_text() == TEMPLATE


def test_apply_is_atomic_and_keeps_the_previous_version(tmp_path):
    s = surface(tmp_path / "recipe")
    new = TEMPLATE.replace("Classify", "Route")
    backup = s.apply(new, tmp_path / "backups")
    assert (tmp_path / "recipe" / "prompt.j2").read_text() == new
    assert backup.read_text() == TEMPLATE
    assert [p.name for p in (tmp_path / "recipe").iterdir()] == ["prompt.j2"]  # no temporary file left


def test_the_sandbox_keeps_a_template_away_from_python_internals():
    with pytest.raises(templating.TemplateProblem):
        templating.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_a_run_records_a_proposal_that_breaks_the_template_as_invalid(cli, workspace):
    """Given a scripted agent whose first proposal breaks the template, the run goes on,
    records it as invalid with the parser's line, and keeps the good proposal after it."""
    folder = write(workspace / "recipe", {
        "prompt.j2": TEMPLATE,
        "proposals.jsonl": "\n".join(json.dumps(p) for p in [
            {"replace": ["{% endif %}", "{% endfor %}"], "rationale": "break it"},
            {"replace": ["Classify the ticket.", "Classify the support ticket into one category."], "rationale": "be specific"},
        ]) + "\n",
        "recipe.toml": """
            [recipe]
            name = "prompt-check"

            [surface]
            kind = "prompt"
            path = "prompt.j2"
            inputs = ["subject", "body"]

            [metric]
            kind = "command"
            run = "wc -c < {file}"
            goal = "maximize"

            [agent]
            kind = "scripted"
            file = "proposals.jsonl"

            [budget]
            experiments = 5
        """,
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    store = Store(workspace / ".overnight" / "overnight.db")
    rows = {r["seq"]: r for r in store.experiments(1)}
    assert rows[1]["status"] == "invalid"
    assert "the template no longer parses: line 6" in rows[1]["reason"]
    assert rows[2]["status"] == "keep"
    assert (folder / "prompt.j2").read_text() == TEMPLATE  # a run never writes the person's file


def test_a_run_of_a_broken_template_stops_before_anything_with_one_sentence(cli, workspace):
    folder = write(workspace / "recipe", {
        "prompt.j2": "Subject: {{ subject }\n{{ body }}\n",
        "proposals.jsonl": "",
        "recipe.toml": """
            [recipe]
            name = "prompt-broken"

            [surface]
            kind = "prompt"
            path = "prompt.j2"
            inputs = ["subject", "body"]

            [metric]
            kind = "command"
            run = "wc -c < {file}"

            [agent]
            kind = "scripted"
            file = "proposals.jsonl"
        """,
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert "Error: The prompt file" in result.output and "is not a valid Jinja2 template: line 1" in result.output
    assert "Traceback" not in result.output
    assert (folder / "prompt.j2").read_text() == "Subject: {{ subject }\n{{ body }}\n"
