"""The `email` surface: a Subject line and a body, rendered for every recipient.

Given Postmark's real welcome template (tests/data/emails, MIT) and a recipients
file, every proposal is rendered for each recipient before it is measured; an
unresolved placeholder or a body over `max_words` is rejected, naming the recipient.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from overnight.core.errors import OvernightError
from overnight.core.store import Store
from overnight.plugins.email import EmailSurface
from tests.conftest import write

DATA = Path(__file__).parent / "data" / "emails"
SUBJECT = "Subject: Welcome to Tallyboard, {{ name }}!\n"
FIELDS = ["name", "email", "action_url", "login_url", "username", "trial_length", "trial_start_date",
          "trial_end_date", "support_email", "live_chat_url", "help_url"]
PEOPLE = [
    ["Ada", "ada@example.com", "https://app.example.com/start?u=1", "https://app.example.com/login", "ada",
     "14", "2024-05-01", "2024-05-15", "help@example.com", "https://example.com/chat", "https://example.com/help"],
    ["Grace", "grace@example.org", "https://app.example.com/start?u=2", "https://app.example.com/login", "grace.h",
     "30", "2024-05-02", "2024-06-01", "help@example.com", "https://example.com/chat", "https://example.com/help"],
    ["Linus", "linus@example.net", "https://app.example.com/start?u=3", "https://app.example.com/login", "linus",
     "14", "2024-05-03", "2024-05-17", "help@example.com", "https://example.com/chat", "https://example.com/help"],
]


def welcome() -> str:
    return SUBJECT + (DATA / "welcome.txt").read_text(encoding="utf-8")


def recipients_csv(rows=PEOPLE, fields=FIELDS) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(fields)
    w.writerows(rows)
    return out.getvalue()


def surface(folder: Path, template: str | None = None, recipients: str | None = None, name="people.csv", **options) -> EmailSurface:
    write(folder, {"welcome.txt": template if template is not None else welcome(),
                   name: recipients if recipients is not None else recipients_csv()})
    return EmailSurface({"path": "welcome.txt", "recipients": name, "max_words": None, **options}, folder)


def test_renders_the_real_template_for_every_recipient(tmp_path):
    s = surface(tmp_path)
    view = s.read()
    renders = s.renderings(view)
    assert [r.subject for r in renders] == ["Welcome to Tallyboard, Ada!", "Welcome to Tallyboard, Grace!", "Welcome to Tallyboard, Linus!"]
    assert "Username: grace.h" in renders[1].body
    assert "You've started a 30 day trial" in renders[1].body
    assert "{{" not in renders[2].text
    rules = s.rules()
    assert "{{ trial_end_date }}" in rules and "Subject" in rules


def test_materialize_writes_the_template_and_each_rendering(tmp_path):
    s = surface(tmp_path / "recipe")
    work = tmp_path / "work"
    work.mkdir()
    artifact = s.materialize(s.read(), work)
    assert artifact == work / "welcome.txt"
    assert artifact.read_text() == welcome()
    first = (work / "renders" / "1.txt").read_text()
    assert first.startswith("Subject: Welcome to Tallyboard, Ada!\n\n")
    lines = [json.loads(line) for line in (work / "renders.jsonl").read_text().splitlines()]
    assert [line["recipient"] for line in lines] == ["ada@example.com", "grace@example.org", "linus@example.net"]
    assert lines[2]["words"] == len(lines[2]["body"].split()) > 100
    assert lines[0]["fields"]["username"] == "ada"


def test_an_unresolved_placeholder_names_the_recipient(tmp_path):
    s = surface(tmp_path)
    base = s.read()
    view = base.replace("Thanks,\n", "Thanks, and say hi to the {{ company }} team,\n")
    assert s.problems(view, base) == ["recipient 1 (ada@example.com): unresolved placeholder: 'company' has no value"]


def test_a_body_over_max_words_is_rejected(tmp_path):
    s = surface(tmp_path, max_words=120)
    base = s.read()
    problems = s.problems(base, base)
    assert len(problems) == 1
    assert problems[0].startswith("the body for recipient ")
    assert "over max_words = 120 (3 recipients are over)" in problems[0]
    short = SUBJECT + "Hi {{ name }}, your {{ trial_length }}-day trial starts today: {{ action_url }}\n"
    assert s.problems(short, base) == []


def test_the_first_line_must_be_the_subject(tmp_path):
    s = surface(tmp_path)
    base = s.read()
    assert s.problems("Hello {{ name }}\n\nWelcome!\n", base) == ["the first line must be 'Subject: ...'"]
    assert s.problems("Subject: \n\nWelcome!\n", base) == ["recipient 1 (ada@example.com): the subject is empty"]


def test_a_template_that_does_not_parse_is_rejected_with_its_line(tmp_path):
    s = surface(tmp_path)
    base = s.read()
    problems = s.problems(SUBJECT + "Hi {{ name }},\nyour trial ends {{ trial_end_date }.\n", base)
    assert problems and problems[0].startswith("the template does not parse: line 3:")


def test_recipients_from_jsonl(tmp_path):
    people = "\n".join(json.dumps(dict(zip(FIELDS, row))) for row in PEOPLE) + "\n"
    s = surface(tmp_path, recipients=people, name="people.jsonl")
    assert [r.recipient for r in s.renderings(s.read())] == ["ada@example.com", "grace@example.org", "linus@example.net"]


def test_a_recipient_missing_a_field_makes_the_users_template_an_error(tmp_path):
    fields = [f for f in FIELDS if f != "help_url"]
    people = recipients_csv([row[:-1] for row in PEOPLE], fields)
    s = surface(tmp_path, recipients=people)
    with pytest.raises(OvernightError) as err:
        s.read()
    assert err.value.message == (f"The email template {tmp_path / 'welcome.txt'} cannot be used: "
                                 "recipient 1 (ada@example.com): unresolved placeholder: 'help_url' has no value.")


def test_a_malformed_recipients_row_names_file_and_line(tmp_path):
    people = recipients_csv() + "Mallory,mallory@example.com,too,few\n"
    s = surface(tmp_path, recipients=people)
    with pytest.raises(OvernightError) as err:
        s.read()
    assert err.value.message == f"{tmp_path / 'people.csv'}:5: this row has 4 values but the header has 11 columns."


RECIPE = """
    [recipe]
    name = "welcome"

    [surface]
    kind = "email"
    path = "welcome.txt"
    recipients = "people.csv"
    max_words = 200

    [metric]
    kind = "command"
    run = "cat renders/*.txt | wc -w"
    goal = "minimize"

    [agent]
    kind = "scripted"
    file = "proposals.jsonl"

    [budget]
    experiments = 5
"""


def test_a_run_rejects_bad_proposals_and_measures_the_renderings(cli, workspace):
    """The metric here counts the words of all renderings, read from renders/ in the work folder."""
    base = welcome()
    shorter = base.replace("Thanks for trying [Product Name]. We’re thrilled to have you on board. ", "")
    folder = write(workspace / "recipe", {
        "welcome.txt": base,
        "people.csv": recipients_csv(),
        "proposals.jsonl": "\n".join(json.dumps(p) for p in [
            {"view": base.replace("Welcome, {{name}}!", "Welcome, {{ nickname }}!"), "rationale": "use a nickname"},
            {"view": base + " ".join(["More."] * 60) + "\n", "rationale": "say more"},
            {"view": shorter, "rationale": "cut the filler"},
        ]) + "\n",
        "recipe.toml": RECIPE,
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    rows = {r["seq"]: r for r in Store(workspace / ".overnight" / "overnight.db").experiments(1)}
    assert rows[1]["status"] == "invalid"
    assert "recipient 1 (ada@example.com): unresolved placeholder: 'nickname' has no value" in rows[1]["reason"]
    assert rows[2]["status"] == "invalid" and "over max_words = 200" in rows[2]["reason"]
    assert rows[3]["status"] == "keep"
    assert rows[3]["score"] < rows[0]["score"]
    assert (folder / "welcome.txt").read_text() == base


def test_a_run_with_an_unresolvable_template_stops_with_one_sentence(cli, workspace):
    folder = write(workspace / "recipe", {
        "welcome.txt": SUBJECT + "Hi {{ name }}, welcome to {{ company }}.\n",
        "people.csv": recipients_csv(),
        "proposals.jsonl": "",
        "recipe.toml": RECIPE,
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert "unresolved placeholder: 'company' has no value" in result.output
    assert "Traceback" not in result.output
