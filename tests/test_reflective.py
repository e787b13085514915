"""The `llm` agent's reflective strategy, through litellm's real client path to the loopback server.

Given what the agent has seen measured (each candidate's per-example train
scores), it improves a parent drawn from the per-example frontier, merges two
candidates that get different examples right, and changes its approach after a
plateau; the last story runs it through `overnight run` on the simulated world
(tests/support/sim_world.py) and checks what the store says.
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
from overnight.plugins.llm_agent import MERGE_SYSTEM, LLMAgent
from overnight.plugins.text import TextSurface
from tests.conftest import write
from tests.support.sim_world import SimWorld

KEY = "sk-test-reflective-0123456789"
BASE = "Reply to the customer.\n"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()  # the slow import, paid once for the module


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def reply(hypothesis: str, text: str) -> str:
    return f"HYPOTHESIS: {hypothesis}\n```\n{text}```\n"


def agent_for(tmp_path: Path, server, **options) -> LLMAgent:
    write(tmp_path, {"reply.txt": BASE})
    values = {"model": "openai/agent-model", "api_base": server.url, "strategy": "reflective", **options}
    checked = check(values, LLMAgent.options)
    assert not checked.problems, checked.problems
    agent = LLMAgent(checked.values, tmp_path)
    agent.llm = Gateway(None, Budget(), Spend())
    agent.prepare(TextSurface(check({"path": "reply.txt"}, TextSurface.options).values, tmp_path))
    agent.start(None, [])
    return agent


def example(ident: str, score: float = 0.0) -> ExampleResult:
    return ExampleResult(ident, f"a ticket about {ident}", "a reply", f"mentions {ident}", score, f"never mentions {ident}")


# The baseline gets b and c right, not a.
BEST_FAILING = [example("a")]


def context(**kw) -> Context:
    values = dict(best_view=BASE, best_score=2 / 3, baseline_score=2 / 3, goal="maximize", rules="Return the whole new file.",
                  metric="score() in score.py (maximize)", parameters=[], history=[], ledger=[], failing=BEST_FAILING,
                  notes=[], budget_left={}, seq=1)
    values.update(kw)
    return Context(**values)


def outcome(proposal, seq: int, status: str, scores: dict[str, float]) -> Attempt:
    """What the loop tells the agent once the proposal is measured (with every train example's score)."""
    failing = [example(e, s) for e, s in scores.items() if s < 1]
    return Attempt(seq=seq, status=status, reason="measured", rationale=proposal.rationale,
                   score=sum(scores.values()) / len(scores), delta=0.0, failing=failing, meta=proposal.meta, scores=scores)


def prompt_of(request: dict) -> str:
    return request["messages"][-1]["content"]


# -- one proposal at a time --------------------------------------------------------------


def test_after_a_plateau_it_improves_the_candidate_that_fixed_what_the_best_gets_wrong(tmp_path, key, llm_server):
    fixes_a = "Reply to the customer and mention a.\n"
    llm_server.queue(reply("mention a", fixes_a),
                     "HYPOTHESIS: mention b too\n<<<<<<< SEARCH\nmention a.\n=======\nmention a and b.\n>>>>>>> REPLACE\n")
    agent = agent_for(tmp_path, llm_server, plateau=1, merge_every=0, edit_format="search_replace")

    first = agent.propose(context())
    agent.observe(outcome(first, 1, "discard", {"a": 1.0, "b": 0.0, "c": 0.0}))  # lower on average: not kept
    second = agent.propose(context(history=[outcome(first, 1, "discard", {"a": 1.0, "b": 0.0, "c": 0.0})]))

    assert first.parents == [0] and first.meta["mode"] == "improve"
    assert first.trace.startswith("reflective: improve #0; frontier: the best only")
    assert second.parents == [1] and second.meta["mode"] == "plateau" and second.meta["parents"] == [1]
    # The edit applied to its parent, not the best: the whole view goes to the loop.
    assert second.view == "Reply to the customer and mention a and b.\n" and second.edits == []
    assert second.trace.startswith("reflective: plateau (1 proposals without a keep): a bolder change of #1 at temperature 1.2")
    request = llm_server.requests[1]
    assert request["temperature"] == 1.2 and llm_server.requests[0]["temperature"] == 0.7
    prompt = prompt_of(request)
    assert ("# The version to improve\nExperiment #1 (score 0.333333; the best scores 0.666667). It gets right train "
            "examples the best gets wrong: a. Improve it without losing those.") in prompt
    assert f"```\n{fixes_a}```" in prompt and "# The current best version" not in prompt
    assert "# Change of approach\nThe last 1 proposals were not kept:\n- #1 discard score 0.333333" in prompt
    assert "## Example b (score 0; the version to improve)" in prompt


def test_two_candidates_right_on_different_examples_are_merged_once(tmp_path, key, llm_server):
    fixes_a = "Reply to the customer and mention a.\n"
    both = "Reply to the customer, mention a, and keep b and c.\n"
    llm_server.queue(reply("mention a", fixes_a), reply("keep what each gets right", both), reply("try c", "Mention c.\n"))
    agent = agent_for(tmp_path, llm_server, merge_every=1, plateau=0)

    first = agent.propose(context())
    agent.observe(outcome(first, 1, "discard", {"a": 1.0, "b": 0.0, "c": 0.0}))
    merged = agent.propose(context())
    agent.observe(outcome(merged, 2, "keep", {"a": 1.0, "b": 1.0, "c": 1.0}))
    after = agent.propose(context(best_view=both, best_score=1.0, failing=[]))

    assert merged.parents == [0, 1] and merged.meta["merge"] is True and merged.view == both
    assert merged.trace.startswith("reflective: merge of #0 and #1: #0 gets 2 train examples right that #1 does not, "
                                   "#1 gets 1 that #0 does not")
    request = llm_server.requests[1]
    assert request["messages"][0]["content"] == MERGE_SYSTEM
    prompt = prompt_of(request)
    assert "# Version A (experiment #0, score 0.666667)\nIt gets these train examples right where version B does not: b, c." in prompt
    assert "# Version B (experiment #1, score 0.333333)\nIt gets these train examples right where version A does not: a." in prompt
    assert f"```\n{BASE}```" in prompt and f"```\n{fixes_a}```" in prompt
    assert "## Example a (score 0; version A fails it)" in prompt and "## Example b (score 0; version B fails it)" in prompt
    # The merge won everywhere: it is the whole frontier now, and no pair is left to merge.
    assert after.meta["mode"] == "improve" and after.parents == [2]


def test_a_version_already_measured_is_not_proposed_again(tmp_path, key, llm_server):
    worse = "Reply.\n"
    llm_server.queue(reply("be brief", worse), reply("be brief", worse), reply("mention a", "Reply and mention a.\n"))
    agent = agent_for(tmp_path, llm_server, merge_every=0, plateau=0)

    first = agent.propose(context())
    agent.observe(outcome(first, 1, "discard", {"a": 0.0, "b": 0.0, "c": 1.0}))  # right on nothing the best misses
    second = agent.propose(context())

    assert second.view == "Reply and mention a.\n" and second.parents == [0]
    retry = prompt_of(llm_server.requests[2])
    assert retry.startswith("That answer could not be used: this exact version was already measured (experiment #1)")


def test_a_version_proposed_again_after_the_retry_goes_to_the_loop_as_itself(tmp_path, key, llm_server):
    """Asked again and still the same version: the proposal carries it, so the loop records it as
    a duplicate (not measured again), as for any agent, not as an unusable reply."""
    worse = "Reply.\n"
    llm_server.queue(reply("be brief", worse), reply("be brief", worse), reply("be brief again", worse))
    agent = agent_for(tmp_path, llm_server, merge_every=0, plateau=0)

    first = agent.propose(context())
    agent.observe(outcome(first, 1, "discard", {"a": 0.0, "b": 0.0, "c": 1.0}))
    again = agent.propose(context())

    assert again.view == worse and not again.error and again.rationale == "be brief again"
    assert again.meta["retried"].startswith("this exact version was already measured (experiment #1)")


def test_without_every_score_it_counts_only_what_the_loop_showed(tmp_path, key, llm_server):
    llm_server.add_rule(None, lambda request: reply("another", f"Reply number {len(llm_server.requests)}.\n"))
    agent = agent_for(tmp_path, llm_server, merge_every=0, plateau=0)
    shown = [example(f"e{i}") for i in range(5)]  # as many as the loop shows: perhaps not all of them

    few, many = agent.propose(context()), agent.propose(context())
    agent.observe(Attempt(2, "discard", "", "", 0.5, 0.0, failing=shown[:2], meta=few.meta))
    agent.observe(Attempt(3, "discard", "", "", 0.1, 0.0, failing=shown, meta=many.meta))

    members = agent.search.frontier.members
    assert members[0].complete and members[0].scores == {"a": 0.0}  # the best's failing examples are all there
    assert members[2].complete and members[2].score("a") == 1.0
    assert not members[3].complete and members[3].score("a") is None and members[3].score("e4") == 0.0


def test_a_resumed_run_keeps_its_plateau_count_and_the_merges_tried(tmp_path, key, llm_server):
    llm_server.add_rule(None, reply("again", "Reply again.\n"))
    agent = agent_for(tmp_path, llm_server, plateau=2)
    history = [Attempt(0, "baseline", "", "", 0.5, 0.0),
               Attempt(1, "keep", "", "", 0.6, 0.1, meta={"strategy": "reflective"}),
               Attempt(2, "discard", "", "idea two", 0.2, 0.0, meta={"strategy": "reflective", "merge": True, "parents": [0, 1]}),
               Attempt(3, "crash", "", "idea three", None, None, meta={"strategy": "reflective"})]

    agent.start(None, history)
    proposal = agent.propose(context(best_view="The kept one.\n"))

    assert agent.search.merged == {frozenset((0, 1))} and agent.search.best_key == 1
    assert proposal.meta["mode"] == "plateau" and proposal.parents == [1] and proposal.meta["proposal"] == "p4"


def test_an_unknown_strategy_is_named(cli, workspace):
    write(workspace / "r", {"reply.txt": BASE, "recipe.toml": """
        [recipe]
        name = "r"
        [surface]
        kind = "text"
        path = "reply.txt"
        [metric]
        kind = "text-stats"
        stat = "words"
        [agent]
        kind = "llm"
        model = "openai/agent-model"
        strategy = "pareto"
        """})

    result = cli("recipes", "validate", workspace / "r")

    assert result.exit_code != 0 and "'strategy' must be one of 'greedy', 'reflective', not 'pareto'" in result.output


# -- the simulated world -------------------------------------------------------------------


def test_the_simulated_task_model_follows_the_rules_in_the_prompt():
    world = SimWorld(seed=0)
    single = next(c for c in world.cats if c.group is None and c.code not in world.conflict)
    double = next(c for c in world.cats if c.group)
    a, b = sorted(world.conflict)[:1][0], world.conflict[sorted(world.conflict)[0]]
    ask = lambda rules, code: world.answer("\n".join(rules) + f"\n\nItem: a crate marked {code}, weighing 3 kg")

    assert ask([], single.code) == "UNKNOWN"
    assert ask(single.rules(), single.code) == single.label
    assert ask(double.rules()[:1], double.code) == "UNKNOWN" and ask(double.rules(), double.code) == double.label
    rule_a, rule_b = world.by_code[a].rules() + world.by_code[b].rules()
    assert ask([rule_a, rule_b], a) == world.by_code[b].label  # conflicting rules: the later wins
    assert ask([rule_a, rule_b], b) == world.by_code[b].label
    assert ask(single.rules() + [f"Items marked {single.code} are answered WRONG."], single.code) == "WRONG"


def test_a_reflective_run_on_the_simulated_world_merges_and_changes_approach(cli, workspace, key, llm_server):
    world = llm_server.simulate(seed=1)
    folder = workspace / "sim"
    world.write_recipe(folder, llm_server.url, agent='strategy = "reflective"\nmerge_every = 3\nplateau = 3',
                       budget="experiments = 15")

    result = cli("run", folder, "--yes")  # it sends the prompt to a model: trusted here

    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    conn.row_factory = sqlite3.Row
    exps = [dict(r) for r in conn.execute("select * from experiments where seq > 0 order by seq")]
    run = dict(conn.execute("select * from runs").fetchone())
    conn.close()
    metas = [json.loads(e["meta"]) for e in exps]
    assert all(m["strategy"] == "reflective" and m["parents"] for m in metas)
    merges = [e for e, m in zip(exps, metas) if m["merge"]]
    assert merges and all(len(json.loads(e["meta"])["parents"]) == 2 for e in merges)
    assert all(e["agent_trace"].startswith("reflective: merge of #") for e in merges)
    plateaus = [e for e, m in zip(exps, metas) if m["mode"] == "plateau"]
    assert plateaus and all(" proposals without a keep): a bolder change of #" in e["agent_trace"] for e in plateaus)
    bold = [r for r in llm_server.requests if r["model"] == "sim-agent" and "# Change of approach" in r["messages"][-1]["content"]]
    assert bold and all(r["temperature"] == 1.2 for r in bold)
    assert run["best_score"] > run["baseline_score"] == 0 and run["holdout_best"] is not None
    assert world.task_calls > 0 and world.agent_calls >= len(exps)
    # `overnight show` says what an experiment was made from, and the run's frontier on request
    merge, parents = merges[0], json.loads(merges[0]["meta"])["parents"]
    shown = cli("show", f"{run['id']}:{merge['seq']}", "--frontier")
    assert shown.exit_code == 0, shown.output
    assert f"  made from  #{parents[0]} and #{parents[1]}, a merge" in shown.output
    assert f"Frontier of run {run['id']}: " in shown.output
    led = [line for line in shown.output.splitlines() if " leads " in line]
    assert led and all(line.strip().startswith("#") for line in led)


# -- the TUI -----------------------------------------------------------------------------------


async def test_the_detail_says_what_an_experiment_was_made_from(made_db):
    from tests.test_tui import SIZE, open_best, screen_text
    from overnight.tui.app import OvernightApp

    conn = sqlite3.connect(made_db)
    conn.execute("update experiments set meta = ? where seq = 3", [json.dumps({"parents": [1, 2], "merge": True})])
    conn.commit()
    conn.close()
    app = OvernightApp(made_db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_best(pilot)
        assert "made from: #1 and #2, a merge" in screen_text(app)


@pytest.fixture
def made_db(tmp_path_factory, workspace):
    from tests.tui_support import copy_store, run_once

    return copy_store(run_once(tmp_path_factory.mktemp("made"))[1], workspace / "store.db")
