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
    assert s.problems(view, base) == ["people.csv has no field 'company' (its fields: " + ", ".join(FIELDS) + ")"]


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
    assert s.problems("Hello {{ name }}\n\nWelcome!\n", base) == ["the first line must be 'Subject: ...', as in the original template"]
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
                                 f"people.csv has no field 'help_url' (its fields: {', '.join(fields)}).")


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
    assert "people.csv has no field 'nickname' (its fields: name, email," in rows[1]["reason"]
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
    assert "people.csv has no field 'company' (its fields: name, email," in result.output
    assert "Traceback" not in result.output


# -- templates as people write them -----------------------------------------------------------


def test_a_template_without_a_subject_line_renders_emails_without_a_subject(tmp_path):
    body = (DATA / "welcome.txt").read_text(encoding="utf-8")  # Postmark's template, as published: no Subject line
    s = surface(tmp_path, template=body)
    renders = s.renderings(s.read())
    assert [r.subject for r in renders] == ["", "", ""]
    assert renders[0].text.startswith("Thanks for trying out [Product Name].")
    assert "the email has no subject line" in s.rules()
    assert s.problems(body.replace("Welcome, {{name}}!", "Hello, {{ name }}!"), body) == []


def test_the_subject_key_gives_the_subject_of_a_template_without_one(tmp_path):
    body = (DATA / "welcome.txt").read_text(encoding="utf-8")
    s = surface(tmp_path, template=body, subject="Your {{ trial_length }}-day trial, {{ name }}")
    renders = s.renderings(s.read())
    assert [r.subject for r in renders] == ["Your 14-day trial, Ada", "Your 30-day trial, Grace", "Your 14-day trial, Linus"]
    assert renders[1].text.startswith("Subject: Your 30-day trial, Grace\n\nThanks for trying out")
    assert "write no 'Subject:' line" in s.rules()
    # Both a Subject line and the key: one sentence says to keep one.
    both = surface(tmp_path / "both", subject="Hello")
    with pytest.raises(OvernightError, match="the recipe's subject key sets the subject \\('Hello'\\); keep one of them"):
        both.read()


def test_a_recipients_file_missing_placeholders_names_every_one_for_every_recipient(tmp_path):
    template = SUBJECT + "Hi {{ name }} at {{ company }} ({{ role }}), see {{ help_url }}.\n"
    people = ("name,email,company,role,help_url\n"
              "Ada,ada@example.com,Acme,,https://h\n")  # every field, role empty: fine
    people_json = "\n".join(json.dumps(r) for r in [
        {"name": "Ada", "email": "ada@example.com", "company": "Acme", "role": "CTO", "help_url": "https://h"},
        {"name": "Grace", "email": "grace@example.org", "help_url": "https://h"},
        {"name": "Linus", "email": "linus@example.net", "company": "Kernel"},
    ]) + "\n"
    assert surface(tmp_path / "ok", template=template, recipients=people).renderings(template)
    s = surface(tmp_path / "gaps", template=template, recipients=people_json, name="people.jsonl")
    with pytest.raises(OvernightError) as err:
        s.read()
    assert err.value.message.endswith(
        "cannot be used: recipient 2 (grace@example.org) has no value for 'company' and 'role' in people.jsonl; "
        "recipient 3 (linus@example.net) has no value for 'role' and 'help_url' in people.jsonl.")


def test_stand_ins_left_in_the_template_are_a_warning_at_validation(cli, workspace):
    folder = write(workspace / "recipe", {
        "welcome.txt": (DATA / "welcome.txt").read_text(encoding="utf-8"),
        "people.csv": recipients_csv(),
        "proposals.jsonl": "",
        "recipe.toml": RECIPE,
    })
    result = cli("recipes", "validate", folder)
    assert result.exit_code == 0, result.output  # a warning, not a problem
    assert "is a valid recipe 'welcome'" in result.output
    assert ("Warning: " in result.output and "[surface]: the email template welcome.txt holds stand-ins that every "
            "recipient would receive as written: [Product Name] (lines 1, 3, 9, 28, 30), [Sender Name] (line 28), "
            "[Company Name, LLC] (line 36)") in result.output
    assert 'stat = "placeholders", max = 0' in result.output
    clean = cli("recipes", "validate", write(workspace / "clean", {
        "welcome.txt": SUBJECT + "Hi {{ name }}, welcome aboard.\n", "people.csv": recipients_csv(),
        "proposals.jsonl": "", "recipe.toml": RECIPE}))
    assert clean.exit_code == 0 and "Warning" not in clean.output
