"""The bundled `cold-email` recipe, end to end: email surface, judge metric, text-stats guards, llm agent.

The loopback server plays the judge (it grades each recipient's email by what it
says) and the agent (it proposes new versions). A version the judge likes more
but that keeps a hype word fails its guard; a version that speaks to each
recipient's own problem and asks one short question is kept.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import tomlkit

from overnight.core import recipe as recipes
from overnight.core.llm import litellm
from overnight.plugins.email import EmailSurface

BUNDLED = Path(__file__).parent.parent / "recipes" / "cold-email"
ORIGINAL = (BUNDLED / "email.txt").read_text(encoding="utf-8")
PEOPLE = list(csv.DictReader((BUNDLED / "recipients.csv").read_text(encoding="utf-8").splitlines()))

SHORTER_BUT_HYPED = """\
Subject: A revolutionary way to run {{ company }}'s projects
Hi {{ first_name }},

Tallyboard is a revolutionary project board for teams in {{ industry }}.
Would a 15-minute call next week be useful?

Sam Okafor, Tallyboard
"""
PERSONAL = """\
Subject: {{ company }}: one board for {{ team_size }}
Hi {{ first_name }},

I read that at {{ company }}, {{ pain_point }}. Tallyboard keeps that work on one shared board that
everyone can update from a phone, so nothing waits on a spreadsheet or an inbox.

Would a 15-minute call next week be worth it to see if it fits?

Sam Okafor
Account Executive, Tallyboard
"""


def judge(request) -> str:
    """Grades like the rubric: relevance and a short, single question matter most."""
    email = re.search(r"<<<\n(.*?)\n>>>", request["messages"][1]["content"], re.DOTALL).group(1)
    person = next(p for p in PEOPLE if f"Hi {p['first_name']}," in email)
    score, reasons = 3, []
    if person["pain_point"] in email:
        score += 4
    else:
        reasons.append(f"It does not speak to {person['company']}'s own problem.")
    if "15-minute" in email:
        score += 2
    else:
        reasons.append("It asks for a 45-minute demo: too much for a first email.")
    return "\n".join(reasons + [f"SCORE: {score}"])


def agent_reply(text: str, hypothesis: str) -> str:
    return f"HYPOTHESIS: {hypothesis}\n```\n{text}```\n"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()


def test_the_bundled_recipe_is_valid_and_renders_for_every_recipient():
    recipe = recipes.load(BUNDLED)
    assert (recipe.surface.cls.name, recipe.metrics[0].cls.name, recipe.agent.cls.name) == ("email", "judge", "llm")
    assert [g.cls.name for g in recipe.guards] == ["text-stats"] * 3
    assert len(PEOPLE) == 10
    surface = EmailSurface(dict(recipe.surface.options), BUNDLED)
    renders = surface.renderings(surface.read())
    assert len(renders) == 10 and all(r.words <= 150 for r in renders)
    assert renders[3].subject == "Tallyboard - the project management tool your team needs"
    assert "Northwind Events" in renders[3].body
    assert surface.problems(PERSONAL, ORIGINAL) == []


def test_a_run_keeps_the_personal_version_and_refuses_the_hyped_one(cli, workspace, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cold-email-0123456789")
    folder = workspace / "cold-email"
    shutil.copytree(BUNDLED, folder)
    doc = tomlkit.parse((folder / "recipe.toml").read_text())
    doc["metric"]["api_base"] = llm_server.url
    doc["agent"]["api_base"] = llm_server.url
    doc["budget"]["experiments"] = 3
    (folder / "recipe.toml").write_text(tomlkit.dumps(doc))
    is_agent = lambda r: r["messages"][0]["content"].startswith("You improve one text")
    llm_server.add_rule(is_agent, agent_reply(SHORTER_BUT_HYPED, "shorter, with a small ask"), times=1)
    llm_server.add_rule(is_agent, agent_reply(PERSONAL, "speak to each prospect's own problem"), times=1)
    llm_server.add_rule(is_agent, agent_reply(PERSONAL.replace("{{ team_size }}", "{{ budget }}"), "mention their budget"))
    llm_server.add_rule(None, judge)

    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "Kept 1 of 3" in result.output
    assert "Score (maximize): baseline 3 -> best 9" in result.output
    assert "The baseline already fails a guard (guard hype words" in result.output  # in the summary, not only the log
    assert (folder / "email.txt").read_text() == ORIGINAL

    db = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    db.row_factory = sqlite3.Row
    rows = {r["seq"]: r for r in db.execute("select * from experiments")}
    assert "already fails a guard (guard hype words" in rows[0]["reason"]
    assert rows[1]["status"] == "guard_failed" and "hype words = 2, above its max 0" in rows[1]["reason"]
    assert rows[2]["status"] == "keep" and rows[2]["score"] == 9.0
    assert rows[3]["status"] == "invalid" and "recipients.csv has no field 'budget' (its fields: first_name," in rows[3]["reason"]

    # Every recipient's email was judged, and the judge's reasons reached the agent.
    judged = db.execute("select example_id, feedback from example_results where experiment_id = ?", (rows[0]["id"],)).fetchall()
    assert [r["example_id"] for r in judged] == [f"recipient {n}" for n in range(1, 11)]
    assert "Brightfield Solar's own problem" in judged[0]["feedback"]
    agent_prompts = [p for p, r in zip(llm_server.prompts, llm_server.requests) if is_agent(r)]
    assert any("It asks for a 45-minute demo" in p for p in agent_prompts)
    roles = {r["role"] for r in db.execute("select role from llm_calls")}
    assert roles == {"agent", "judge"}
