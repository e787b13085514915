"""The bundled `triage` recipe, end to end: the llm agent improves a real prompt and the gain holds on holdout.

The loopback server plays both models, through litellm's real client. As the task
model it answers with the exact label only when the prompt lists the labels and
asks for the label alone (as a real small model tends to); as the agent it reads
the failing tickets and proposes that instruction. The run must keep that change,
report train and holdout, record every call with tokens and cost, never show the
agent a holdout ticket, and stop at its USD cap when the cap is low.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import tomlkit

from overnight.core import recipe as recipes
from overnight.core.llm import litellm
from overnight.plugins import templating
from overnight.plugins.dataset import DatasetMetric

BUNDLED = Path(__file__).parent.parent / "recipes" / "triage"
TICKETS = [json.loads(line) for line in (BUNDLED / "tickets.jsonl").read_text(encoding="utf-8").splitlines()]
BY_SUBJECT = {t["subject"]: t for t in TICKETS}
LABELS = ["billing", "bug", "account", "feature_request", "how_to"]
INSTRUCTION = "Answer with exactly one of these labels and nothing else"
KEY = "sk-test-triage-0123456789abcdef"


# -- the bundled recipe as shipped ----------------------------------------------------------


def test_the_bundled_recipe_is_valid_and_its_tickets_are_labelled():
    recipe = recipes.load(BUNDLED)
    assert (recipe.surface.cls.name, recipe.metrics[0].cls.name, recipe.agent.cls.name) == ("prompt", "dataset", "llm")
    assert recipe.metrics[0].options["task_model"] == recipe.agent.options["model"] == "openai/gpt-4o-mini"
    assert recipe.budget.usd > 0

    assert len(TICKETS) >= 60
    counts = Counter(t["category"] for t in TICKETS)
    assert sorted(counts) == sorted(LABELS) and min(counts.values()) >= 10
    assert len({t["id"] for t in TICKETS}) == len(TICKETS) and len(BY_SUBJECT) == len(TICKETS)
    assert all(t["subject"].strip() and len(t["body"].split()) >= 5 for t in TICKETS)

    template = (BUNDLED / "prompt.j2").read_text()
    assert templating.variables(template) == {"subject", "body"}
    for t in TICKETS:
        assert t["body"] in templating.render(template, t)


def test_its_split_holds_out_tickets_of_every_category():
    options = {k: o.default for k, o in DatasetMetric.options.items()}
    options.update(recipes.load(BUNDLED).metrics[0].options)
    options.pop("goal", None)
    examples = DatasetMetric(options, BUNDLED).load()
    held = [r.fields["category"] for r, split in examples if split == "holdout"]
    assert len(held) == 22 and set(held) == set(LABELS)


# -- a run against the loopback server ---------------------------------------------------------


IMPROVED = (BUNDLED / "prompt.j2").read_text().replace(
    "Category:", f"{INSTRUCTION}: billing, bug, account, feature_request, how_to.\n\nCategory:")


def task_model(request) -> str:
    prompt = request["messages"][-1]["content"]
    ticket = BY_SUBJECT[re.search(r"^Subject: (.*)$", prompt, re.MULTILINE).group(1)]
    label = ticket["category"]
    if INSTRUCTION in prompt:
        return label
    if label == "bug":
        return "bug"  # the obvious one it gets right anyway
    return f"This looks like a {label.replace('_', ' ')} ticket."


def agent_reply(text: str, hypothesis: str) -> str:
    return f"HYPOTHESIS: {hypothesis}\n```\n{text}```\n"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()


@pytest.fixture
def triage(workspace, llm_server, monkeypatch):
    """A copy of the bundled recipe pointed at the loopback server (a person's own copy)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    folder = workspace / "triage"
    shutil.copytree(BUNDLED, folder)
    doc = tomlkit.parse((folder / "recipe.toml").read_text())
    doc["metric"]["api_base"] = llm_server.url
    doc["agent"]["api_base"] = llm_server.url
    doc["budget"]["experiments"] = 3
    doc["agent"]["strategy"] = "greedy"  # the story below is the greedy one: each proposal edits the best
    (folder / "recipe.toml").write_text(tomlkit.dumps(doc))
    is_agent = lambda r: r["messages"][0]["content"].startswith("You improve one text")
    llm_server.add_rule(is_agent, agent_reply(IMPROVED.replace("{{ body }}", "(body omitted)"), "drop the body"), times=1)
    llm_server.add_rule(is_agent, agent_reply(IMPROVED, "list the five labels and ask for the label alone"), times=1)
    llm_server.add_rule(is_agent, agent_reply(IMPROVED.replace("You are a support agent", "You are a careful support agent"),
                                              "ask for care"))
    llm_server.add_rule(None, task_model)
    return folder


def test_a_run_keeps_the_agents_improvement_and_reports_train_and_holdout(cli, triage, llm_server):
    result = cli("run", triage, "--yes")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Kept 1 of " in out
    assert re.search(r"Score \(maximize\): baseline 0\.1887 -> best 1\b", out), out  # 10 of 53 train tickets
    assert re.search(r"Holdout: baseline 0\.\d+ -> best 1\b", out), out
    assert (triage / "prompt.j2").read_text() == (BUNDLED / "prompt.j2").read_text()  # nothing of the person's written

    db = sqlite3.connect(triage.parent / ".overnight" / "overnight.db")
    db.row_factory = sqlite3.Row
    run = db.execute("select * from runs").fetchone()
    assert run["holdout_best"] == 1.0 and run["holdout_baseline"] < 0.5
    rows = {r["seq"]: r for r in db.execute("select * from experiments")}
    # The agent's first answer dropped {{ body }}; the surface refused it and the agent tried again.
    assert rows[1]["status"] == "keep"
    assert rows[1]["rationale"] == "list the five labels and ask for the label alone"
    assert "it drops the declared input {{ body }}" in rows[1]["agent_trace"]
    assert rows[2]["status"] == "discard"  # as good, not better: no gain, not kept
    assert rows[3]["status"] == "duplicate"

    calls = db.execute("select * from llm_calls").fetchall()
    assert {c["role"] for c in calls} == {"agent", "task"}
    fresh = [c for c in calls if not c["cached"]]
    assert fresh and all(c["prompt_tokens"] > 0 and c["completion_tokens"] > 0 and c["cost_usd"] > 0 for c in fresh)
    assert abs(sum(c["cost_usd"] for c in calls) - run["usd"]) < 1e-9
    assert KEY not in (triage.parent / ".overnight" / "overnight.db").read_bytes().decode("utf-8", "replace")

    # The agent read the failing train tickets and never a holdout one.
    holdout = {r["example_id"] for r in db.execute("select example_id from example_results where split = 'holdout'")}
    assert len(holdout) == 22
    agent_prompts = [p for p in llm_server.prompts if "# Editing rules" in p]
    assert agent_prompts and any("Expected: billing" in p for p in agent_prompts)
    for ticket in TICKETS:
        if ticket["id"] in holdout:
            assert not any(ticket["body"][:60] in p for p in agent_prompts), ticket["id"]


def test_a_low_usd_cap_stops_the_run_saying_so(cli, triage, llm_server):
    doc = tomlkit.parse((triage / "recipe.toml").read_text())
    doc["budget"]["usd"] = 0.0015
    doc["budget"]["experiments"] = 20
    (triage / "recipe.toml").write_text(tomlkit.dumps(doc))
    result = cli("run", triage, "--yes")
    assert "spend cap reached ($0.0015)" in result.output
    assert "Traceback" not in result.output
    db = sqlite3.connect(triage.parent / ".overnight" / "overnight.db")
    usd, reason = db.execute("select usd, stop_reason from runs").fetchone()
    assert usd <= 0.0015 and "spend cap reached" in reason
