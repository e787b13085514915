"""The `llm` agent, through litellm's real client path to the loopback server.

Given a text to improve, a scoring function that says which examples fail and why,
and a server scripted like a model, the agent reads the traces and proposes; the
loop keeps what scores better and records every call.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from overnight.core.budget import Budget, Spend
from overnight.core.contracts import Attempt, Context, ExampleResult
from overnight.core.llm import Gateway, litellm
from overnight.core.options import check
from overnight.core.store import Store
from overnight.plugins.llm_agent import LLMAgent
from overnight.plugins.text import TextSurface
from tests.conftest import write
from tests.support.llm_server import Reply as ServerReply

KEY = "sk-test-agent-9876543210abcdef"
ORIGINAL = "Write a reply to the customer.\n"

SCORE = '''
WANTED = {
    "sorry": "an angry customer whose parcel is late",
    "refund": "a customer charged twice",
    "thanks": "a customer who praises the support team",
}

def score(path):
    text = open(path).read().lower()
    examples = []
    for word, ticket in WANTED.items():
        hit = word in text
        examples.append({
            "id": word, "input": ticket, "output": text.strip(), "expected": f"a reply that says {word!r}",
            "score": 1.0 if hit else 0.0, "feedback": "" if hit else f"the reply never says {word!r}",
        })
    return {"score": sum(e["score"] for e in examples) / len(examples), "examples": examples}
'''


def reply(hypothesis: str, text: str) -> str:
    return f"HYPOTHESIS: {hypothesis}\n```\n{text}```\n"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()  # the slow import, paid once for the module


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def make_recipe(folder: Path, server, *, agent: str = "", budget: str = "experiments = 1", model="openai/agent-model",
                text: str = ORIGINAL) -> Path:
    api_base = f'api_base = "{server.url}"\n' if server is not None else ""
    return write(folder, {
        "reply.txt": text,
        "score.py": SCORE,
        "program.md": "Replies must stay polite and short.\n",
        "recipe.toml": f"""
            [recipe]
            name = "{folder.name}"

            [surface]
            kind = "text"
            path = "reply.txt"

            [metric]
            kind = "python"
            file = "score.py"

            [agent]
            kind = "llm"
            model = "{model}"
            instructions = "program.md"
            strategy = "greedy"
            {api_base}{agent}

            [budget]
            {budget}
            """,
    })


def db_rows(workspace: Path, sql: str, args=()) -> list[dict]:
    conn = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


# -- end to end ----------------------------------------------------------------------


def test_a_run_keeps_the_improvement_the_model_proposes(workspace, cli, key, llm_server):
    llm_server.add_rule("# The current best version", reply(
        "every failing example wants an apology, a refund and thanks",
        "Write a reply to the customer: say sorry, offer a refund, and say thanks.\n"))
    folder = make_recipe(workspace / "support", llm_server)

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert "Kept 1 of 1 experiments" in result.output
    exp = db_rows(workspace, "select * from experiments where seq = 1")[0]
    assert exp["status"] == "keep" and exp["score"] == 1.0
    assert exp["rationale"] == "every failing example wants an apology, a refund and thanks"
    assert exp["tokens"] > 0 and "--- answer 1 ---" in exp["agent_trace"]
    calls = db_rows(workspace, "select * from llm_calls")
    assert len(calls) == 1
    call = calls[0]
    assert (call["role"], call["model"], call["experiment_id"]) == ("agent", "openai/agent-model", exp["id"])
    assert call["prompt_tokens"] > 0 and call["completion_tokens"] > 0 and call["seconds"] > 0
    assert call["cost_usd"] == 0.0 and call["cached"] == 0 and call["error"] == ""
    assert (folder / "reply.txt").read_text() == ORIGINAL  # nothing of the user's is written


def test_the_request_shows_failing_examples_ledger_notes_and_instructions(workspace, cli, key, llm_server):
    llm_server.queue(
        reply("a warmer opening may help", "Write a warm reply to the customer.\n"),
        reply("say sorry first", "Write a reply to the customer and say sorry.\n"),
    )
    folder = make_recipe(workspace / "support", llm_server, budget="experiments = 2")
    store = Store()
    store.add_note("support", "Never promise a delivery date.")
    store.close()

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert [e["status"] for e in db_rows(workspace, "select status from experiments order by seq")] == ["baseline", "discard", "keep"]
    first, second = (r["messages"][1]["content"] for r in llm_server.requests)
    assert first.count("## Example") == 3  # every failing train example of the best, once
    # ...and then also those of the discarded experiment, whose outputs differ.
    assert second.count("## Example") == 5 and second.count("; experiment 1 (discard))") == 2
    for prompt in (first, second):
        assert "Input: a customer charged twice" in prompt
        assert "Output: write a reply to the customer." in prompt
        assert "Feedback: the reply never says 'refund'" in prompt
        assert "Expected: a reply that says 'refund'" in prompt
        assert "Replies must stay polite and short." in prompt  # program.md, verbatim
        assert "- Never promise a delivery date." in prompt  # a person's note
        assert "Editing rules\nReturn the whole new file." in prompt
        assert "Goal: maximize the score. Best score so far: 0" in prompt
        assert f"```\n{ORIGINAL}```" in prompt
        assert "experiments 2" in prompt or "experiments 1" in prompt  # the budget left
    assert "Already tried" not in first
    assert "- #1 discard score 0 (+0 vs the original): a warmer opening may help ->" in second


def test_an_answer_that_never_holds_a_usable_edit_is_recorded_invalid(workspace, cli, key, llm_server):
    llm_server.add_rule(None, "HYPOTHESIS: shorten it\n<<<<<<< SEARCH\nDear customer,\n=======\nHi,\n>>>>>>> REPLACE\n")
    folder = make_recipe(workspace / "support", llm_server, agent='edit_format = "search_replace"')

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    exp = db_rows(workspace, "select * from experiments where seq = 1")[0]
    assert exp["status"] == "invalid"
    assert "the SEARCH text of block 1 is not in the current best version (it starts 'Dear customer,')" in exp["reason"]
    assert "(after one retry)" in exp["reason"] and exp["rationale"] == "shorten it"
    assert llm_server.count == 2  # tried once more, with the problem shown
    assert "That answer could not be used: the SEARCH text of block 1" in llm_server.requests[1]["messages"][-1]["content"]
    assert [c["experiment_id"] for c in db_rows(workspace, "select * from llm_calls")] == [exp["id"]] * 2
    shown = cli("show", "1").output
    assert "the model's reply, as it came" in shown and "--- answer 2 ---" in shown and "<<<<<<< SEARCH" in shown


def test_the_usd_cap_stops_the_run_saying_so(workspace, cli, key, llm_server):
    answers = iter(f"Write a reply to the customer, version {i}.\n" for i in range(100))
    llm_server.add_rule(None, lambda request: reply("try another wording", next(answers)))
    # A priced model (litellm's table), served by the loopback server.
    folder = make_recipe(workspace / "support", llm_server, model="openai/gpt-4o-mini", agent="max_tokens = 200",
                         budget="experiments = 50\nusd = 0.0003")

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert "spend cap reached ($0.0003)" in result.output
    run = db_rows(workspace, "select * from runs")[0]
    assert run["status"] == "finished" and run["stop_reason"].startswith("spend cap reached ($0.0003)")
    assert 0 < run["usd"] <= 0.0003
    calls = db_rows(workspace, "select * from llm_calls")
    assert len(calls) == llm_server.count >= 2 and all(c["cost_usd"] > 0 for c in calls)
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(run["usd"])
    assert run["experiments"] < 50


def test_a_missing_api_key_is_named_before_anything_is_spent(workspace, cli, monkeypatch, llm_server):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    folder = make_recipe(workspace / "support", None, model="gpt-4o-mini")

    result = cli("run", folder, "--yes")

    assert result.exit_code != 0
    assert "Error: The model 'gpt-4o-mini' needs the environment variable OPENAI_API_KEY, which is not set" in result.output
    assert "Traceback" not in result.output
    assert not db_rows(workspace, "select * from runs")


def test_an_unknown_model_is_named(workspace, cli, key):
    folder = make_recipe(workspace / "support", None, model="mystery-model")

    result = cli("run", folder, "--yes")

    assert result.exit_code != 0
    assert "Error: Unknown model 'mystery-model'" in result.output and "Traceback" not in result.output
    assert "Provider List" not in result.output  # litellm's own banner stays quiet


def test_a_refused_key_fails_the_run_naming_the_variable(workspace, cli, key, llm_server):
    llm_server.require_key = "the-right-key"
    folder = make_recipe(workspace / "support", llm_server)

    result = cli("run", folder, "--yes")

    assert result.exit_code != 0
    assert "refused the API key for 'openai/agent-model' (environment variable OPENAI_API_KEY, which is set)" in result.output
    assert KEY not in result.output
    run = db_rows(workspace, "select * from runs")[0]
    assert run["status"] == "failed" and "refused the API key" in run["stop_reason"]
    assert llm_server.count == 1  # a refused key is not retried


def test_the_api_key_never_reaches_the_database(workspace, cli, key, llm_server):
    # The key turns up where it should not: in the person's instructions and in the model's answer.
    llm_server.add_rule(None, lambda request: reply(f"use the key {KEY}", f"Say sorry. {KEY}\n"))
    folder = make_recipe(workspace / "support", llm_server, budget="experiments = 2")
    (folder / "program.md").write_text(f"The service key is {KEY}.\n")

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert any(KEY in r["messages"][1]["content"] for r in llm_server.requests)  # the model did see it
    assert db_rows(workspace, "select count(*) n from llm_calls")[0]["n"] >= 1
    for file in (workspace / ".overnight").glob("overnight.db*"):
        assert KEY.encode() not in file.read_bytes(), file.name


# -- one proposal at a time --------------------------------------------------------------


def agent_for(tmp_path: Path, server, *, text: str = ORIGINAL, surface: dict | None = None, **options) -> LLMAgent:
    write(tmp_path, {"reply.txt": text})
    values = {"model": "openai/agent-model", "api_base": server.url, "strategy": "greedy", **options}
    checked = check(values, LLMAgent.options)
    assert not checked.problems
    agent = LLMAgent(checked.values, tmp_path)
    surface_options = check({"path": "reply.txt", **(surface or {})}, TextSurface.options).values
    agent.llm = Gateway(None, Budget(), Spend())
    agent.llm.backoff = 0.01
    agent.prepare(TextSurface(surface_options, tmp_path))
    return agent


def context(view: str = ORIGINAL, **kw) -> Context:
    values = dict(
        best_view=view, best_score=0.0, baseline_score=0.0, goal="maximize", rules="Return the whole new file.",
        metric="score() in score.py (maximize)", parameters=[], history=[], ledger=[],
        failing=[ExampleResult("refund", "a customer charged twice", "no", "refund", 0.0, "never says refund")],
        notes=[], budget_left={"usd": 0.0}, seq=1,
    )
    values.update(kw)
    return Context(**values)


LONG = "".join(f"Rule {i}: answer the customer in plain words.\n" for i in range(120))


def test_a_large_text_is_edited_with_search_replace_blocks(tmp_path, key, llm_server):
    llm_server.add_rule(None, "HYPOTHESIS: name the refund rule\n```\n<<<<<<< SEARCH\nRule 7: answer the customer in plain words.  \n"
                              "=======\nRule 7: offer a refund when charged twice.\n>>>>>>> REPLACE\n```\n")
    agent = agent_for(tmp_path, llm_server, text=LONG)

    proposal = agent.propose(context(LONG))

    assert not proposal.error and proposal.view is None
    # The trailing spaces the model added are forgiven: the edit holds the view's exact line.
    assert proposal.edits == [("Rule 7: answer the customer in plain words.\n", "Rule 7: offer a refund when charged twice.\n")]
    assert proposal.rationale == "name the refund rule" and proposal.meta["format"] == "search_replace"
    assert "<<<<<<< SEARCH" in llm_server.requests[0]["messages"][1]["content"]  # asked for edits, not the whole text
    assert len(proposal.llm_calls) == 1 and proposal.tokens > 0


def test_a_small_text_is_proposed_whole_and_fences_inside_it_survive(tmp_path, key, llm_server):
    new = "Reply with a code block:\n```\nsorry\n```\nthen sign.\n"
    llm_server.add_rule(None, f"Sure.\n**Hypothesis:** show the format\n```markdown\n{new}```\n")
    agent = agent_for(tmp_path, llm_server)

    proposal = agent.propose(context())

    assert proposal.view == new and proposal.rationale == "show the format" and not proposal.edits


def test_a_reply_without_a_proposal_is_retried_once_with_the_problem_shown(tmp_path, key, llm_server):
    llm_server.queue("I think the text is fine as it is.", reply("say sorry", "Say sorry to the customer.\n"))
    agent = agent_for(tmp_path, llm_server)

    proposal = agent.propose(context())

    assert proposal.view == "Say sorry to the customer.\n" and not proposal.error
    assert llm_server.count == 2 and len(proposal.llm_calls) == 2
    retry = llm_server.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "I think the text is fine as it is."}
    assert retry[-1]["content"].startswith("That answer could not be used: no proposal found")
    assert proposal.meta["retried"].startswith("no proposal found")


def test_a_truncated_reply_is_retried_asking_for_edits(tmp_path, key, llm_server):
    llm_server.queue(ServerReply("HYPOTHESIS: rewrite\n```\nWrite a reply", finish_reason="length"),
                     "HYPOTHESIS: be brief\n<<<<<<< SEARCH\nWrite a reply\n=======\nWrite a short reply\n>>>>>>> REPLACE\n")
    agent = agent_for(tmp_path, llm_server)

    proposal = agent.propose(context())

    assert proposal.edits == [("Write a reply", "Write a short reply")] and not proposal.error
    last = llm_server.requests[1]["messages"][-1]["content"]
    assert "the answer was cut off at max_tokens (4096)" in last and "<<<<<<< SEARCH" in last


def test_a_proposal_the_surface_rejects_is_retried_then_invalid(tmp_path, key, llm_server):
    text = "# keep this header\n--- begin\nWrite a reply.\n--- end\n"
    llm_server.add_rule(None, reply("drop the header", "--- begin\nWrite a reply, say sorry.\n--- end\n"))
    agent = agent_for(tmp_path, llm_server, text=text, surface={"region_start": "--- begin", "region_end": "--- end"})

    proposal = agent.propose(context(text))

    assert proposal.error == "the surface rejects it: it changes text outside the editable region (after one retry)"
    assert proposal.view is None and not proposal.edits and len(proposal.llm_calls) == 2
    assert "--- answer 2 ---" in proposal.trace


@pytest.mark.parametrize("failure, message", [
    (500, "failed (500) for 'openai/agent-model' after 3 tries"),
    (429, "kept answering 'rate limit' (429)"),
])
def test_a_failing_server_makes_an_invalid_proposal(tmp_path, key, llm_server, failure, message):
    llm_server.add_rule(None, failure)
    agent = agent_for(tmp_path, llm_server)

    proposal = agent.propose(context())

    assert message in proposal.error and llm_server.count == 3
    assert proposal.llm_calls[0].error and proposal.view is None


def test_a_hanging_server_makes_an_invalid_proposal_after_its_timeout(tmp_path, key, llm_server):
    llm_server.add_rule(None, hang=True)
    agent = agent_for(tmp_path, llm_server, timeout=1.0)
    agent.llm.attempts = 1

    proposal = agent.propose(context())

    assert proposal.error == "The call to 'openai/agent-model' got no answer within 1 s (1 tries)."


def test_the_context_is_capped_and_shows_crash_logs(tmp_path, key, llm_server):
    llm_server.add_rule(None, reply("x", "Something else.\n"))
    agent = agent_for(tmp_path, llm_server, history=3)
    failing = [ExampleResult(f"e{i}", f"input {i}", "same output", "x", 0.0, "wrong") for i in range(30)]
    history = [Attempt(seq=i, status="discard", reason="no better", rationale=f"idea {i}", score=0.0, delta=0.0,
                       failing=failing[:3]) for i in range(1, 9)]
    history.append(Attempt(seq=9, status="crash", reason="the function failed", rationale="idea 9", score=None,
                           delta=None, trace="Traceback ...\nZeroDivisionError: division by zero"))

    agent.propose(context(failing=failing, history=history, ledger=history))

    prompt = llm_server.requests[0]["messages"][1]["content"]
    # Capped: ten of the best's (two places are kept for recent experiments, whose e0..e2 are the same).
    assert prompt.count("## Example") == 10
    assert prompt.count("## Example e0 ") == 1
    assert "idea 6" not in prompt and "- #7 discard" in prompt and "- #9 crash: idea 9 -> the function failed" in prompt
    assert "ZeroDivisionError: division by zero" in prompt


def test_a_missing_instructions_file_is_named(tmp_path, key, llm_server):
    with pytest.raises(Exception, match=r"The instructions file .*nope.md does not exist \(agent instructions = 'nope.md'\)"):
        agent_for(tmp_path, llm_server, instructions="nope.md")


def test_proposals_are_recorded_as_json_in_meta(tmp_path, key, llm_server):
    llm_server.add_rule(None, reply("say sorry", "Say sorry.\n"))
    agent = agent_for(tmp_path, llm_server)

    proposal = agent.propose(context())

    assert json.loads(json.dumps(proposal.meta)) == {"model": "openai/agent-model", "format": "whole", "answer": "view"}


def test_a_proposal_can_be_priced_before_it_is_made(tmp_path, key, llm_server):
    agent = agent_for(tmp_path, llm_server, model="openai/gpt-4o-mini", max_tokens=1000)

    tokens, usd = agent.estimate(context())

    assert tokens > 1000 and usd > 0
    assert usd == pytest.approx(sum(litellm().cost_per_token(model="gpt-4o-mini", prompt_tokens=tokens - 1000,
                                                             completion_tokens=1000)))
    assert llm_server.count == 0
