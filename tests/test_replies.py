"""Replies shaped like the ones real models give, through litellm over HTTP to the loopback server.

Each is either read for what it proposes or refused with a reason the retry shows the model;
a refused or cut reply is never applied.
"""

from __future__ import annotations

import pytest

from overnight.core.llm import litellm
from tests.support.llm_server import Reply as ServerReply
from tests.test_llm_agent import LONG, ORIGINAL, agent_for, context

NEW = "Write a reply to the customer. Say sorry and offer a refund.\n"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-replies-0123456789abcdef")


def test_a_reasoning_models_think_block_is_dropped_fences_and_all(tmp_path, llm_server):
    llm_server.add_rule(None, "<think>\nMaybe:\n```\nA draft I will not use.\n```\nHYPOTHESIS: not this one\n</think>\n"
                              f"HYPOTHESIS: apologise and refund\n```\n{NEW}```\n")
    proposal = agent_for(tmp_path, llm_server).propose(context())

    assert proposal.view == NEW and proposal.rationale == "apologise and refund" and not proposal.error
    assert llm_server.count == 1


def test_prose_around_several_fences_takes_the_revision_not_the_quote(tmp_path, llm_server):
    llm_server.add_rule(None, f"Your current text is:\n```\n{ORIGINAL}```\nHYPOTHESIS: name the refund\n"
                              f"I would change it to:\n```text\n{NEW}```\nThis should fix the refund example.\n")
    proposal = agent_for(tmp_path, llm_server).propose(context())

    assert proposal.view == NEW and proposal.rationale == "name the refund" and not proposal.error


def test_plain_text_with_no_fence_is_taken_as_the_whole_text(tmp_path, llm_server):
    llm_server.add_rule(None, f"HYPOTHESIS: say sorry and refund\nHere is the improved text:\n{NEW}")
    proposal = agent_for(tmp_path, llm_server).propose(context())

    assert proposal.view == NEW and proposal.meta["answer"] == "view" and not proposal.error
    assert llm_server.count == 1  # no retry spent on a missing fence


def test_a_refusal_is_never_applied_and_says_the_model_declined(tmp_path, llm_server):
    llm_server.add_rule(None, "I'm sorry, but I can't help with rewriting this text.")
    proposal = agent_for(tmp_path, llm_server).propose(context())

    assert proposal.view is None and not proposal.edits
    assert proposal.error.startswith("the model declined") and proposal.error.endswith("(after one retry)")
    assert "I'm sorry, but I can't help" in proposal.trace  # the raw reply is kept for `show` and the TUI


def test_a_reply_cut_at_max_tokens_is_never_applied(tmp_path, llm_server):
    # Cut by the server at max_tokens: no fence closes, and the finish reason says "length".
    llm_server.add_rule(None, f"HYPOTHESIS: refund\n```\n{NEW * 40}```\n")
    proposal = agent_for(tmp_path, llm_server, max_tokens=20).propose(context())

    assert proposal.view is None and "cut off at max_tokens (20)" in proposal.error
    # Cut with a finish reason that claims it stopped: still refused.
    llm_server.rules.clear()
    llm_server.add_rule(None, ServerReply("HYPOTHESIS: refund\n<<<<<<< SEARCH\nWrite a reply", finish_reason="stop"))
    cut = agent_for(tmp_path, llm_server).propose(context())
    assert cut.view is None and not cut.edits and "cut off inside a SEARCH/REPLACE block" in cut.error


def test_search_replace_without_fences_is_applied(tmp_path, llm_server):
    llm_server.add_rule(None, "Sure!\nHYPOTHESIS: name the refund rule\n<<<<<<< SEARCH\nRule 7: answer the customer in plain words.\n"
                              "=======\nRule 7: offer a refund when charged twice.\n>>>>>>> REPLACE\nDone.")
    proposal = agent_for(tmp_path, llm_server, text=LONG).propose(context(LONG))

    assert proposal.edits == [("Rule 7: answer the customer in plain words.\n", "Rule 7: offer a refund when charged twice.\n")]
    assert not proposal.error and proposal.rationale == "name the refund rule"


def test_a_run_where_no_proposal_could_be_used_says_so_and_what_to_change(workspace, cli, llm_server):
    from tests.test_llm_agent import make_recipe

    llm_server.add_rule(None, "I think the text is fine as it is.")
    folder = make_recipe(workspace / "support", llm_server, budget="experiments = 2")

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert "No proposal could be used: 2 of 2 ended invalid; the commonest reason (2 of 2): no proposal found." in result.output
    assert "try a larger model, a larger max_tokens" in result.output and "`overnight show 1:1` prints its reply" in result.output
