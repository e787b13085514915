"""Paired acceptance, minibatch screening, ties and every example's score, through real runs.

The task model is the loopback OpenAI-compatible server reached through litellm:
it answers an example "yes" only when the prompt names that example's item
("fix item 3"), so which examples a prompt gets right is known exactly.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from overnight.core.budget import Spend
from overnight.core.contracts import MeasureRequest
from overnight.core.decide import paired_verdict, sign_test
from overnight.core.state import RunState
from overnight.core.store import Store
from tests.conftest import write

KEY = "sk-test-screening-0123456789"
BASE = "Answer yes or no: {{ item }}\n"
N = 10  # examples, all expecting "yes"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def task_model(server) -> None:
    def answer(request: dict) -> str:
        text = request["messages"][-1]["content"]
        item = re.search(r"Answer yes or no: (item \d+)", text).group(1)
        return "yes" if f"fix {item}." in text else "no"
    server.add_rule(lambda r: r.get("model") == "task", answer)


def fixes(*items: int) -> str:
    return "".join(f"fix item {i}.\n" for i in items)


def folder_for(workspace: Path, server, proposals: list[str], budget: str = "", metric: str = "") -> Path:
    examples = "".join(json.dumps({"id": f"e{i}", "item": f"item {i}", "label": "yes"}) + "\n" for i in range(N))
    lines = "".join(json.dumps({"view": BASE + p, "rationale": f"proposal {n}"}) + "\n" for n, p in enumerate(proposals, 1))
    return write(workspace / "r", {
        "prompt.j2": BASE, "examples.jsonl": examples, "proposals.jsonl": lines,
        "recipe.toml": f"""
            [recipe]
            name = "paired"

            [surface]
            kind = "prompt"
            path = "prompt.j2"
            inputs = ["item"]

            [metric]
            kind = "dataset"
            file = "examples.jsonl"
            expected_field = "label"
            task_model = "openai/task"
            api_base = "{server.url}"
            holdout = 0
            contamination = false
            {metric}

            [agent]
            kind = "scripted"
            file = "proposals.jsonl"

            [budget]
            experiments = {len(proposals)}
            {budget}
            """,
    })


def experiments(workspace: Path) -> list[dict]:
    conn = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("select * from experiments where seq > 0 order by seq")]
    conn.close()
    return rows


# -- paired acceptance ---------------------------------------------------------------------


def test_the_sign_test_counts_only_the_examples_that_differ():
    assert sign_test(1, 0) == 0.5 and sign_test(5, 0) == 1 / 32 and sign_test(0, 0) == 1.0
    assert sign_test(4, 1) == pytest.approx(6 / 32)
    five = {f"e{i}": 0 for i in range(5)}
    assert paired_verdict(five | {"e0": 1}, five, "maximize", 0.05) == \
        "wins on 1 example and loses on 0 against the best (sign test p = 0.5, paired_level = 0.05)"
    # with fewer than 5 examples no result reaches 0.05: more wins than losses is all it asks
    assert paired_verdict({"a": 1, "b": 0, "c": 1}, {"a": 0, "b": 0, "c": 1}, "maximize", 0.05) is None
    assert paired_verdict({f"e{i}": 1 for i in range(6)}, {f"e{i}": 0 for i in range(6)}, "maximize", 0.05) is None
    assert paired_verdict({"a": 1, "b": 0}, {"a": 0, "b": 1}, "maximize", 1) is not None  # one win, one loss: no progress


def test_one_flipped_example_of_a_deterministic_metric_is_not_kept(cli, workspace, key, llm_server):
    task_model(llm_server)
    folder = folder_for(workspace, llm_server, [fixes(0), fixes(0, 1, 2, 3, 4, 5)], budget="paired_level = 0.25")

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    one, six = experiments(workspace)
    assert one["status"] == "discard" and one["reason"] == (
        "beats the best (0) by 0.1, more than the bar of 0, but wins on 1 example and loses on 0 against the best "
        "(sign test p = 0.5, paired_level = 0.25)")
    assert six["status"] == "keep" and six["score"] == pytest.approx(0.6)


def test_by_default_a_keep_only_wins_more_examples_than_it_loses(cli, workspace, key, llm_server):
    task_model(llm_server)
    folder = folder_for(workspace, llm_server, [fixes(0), fixes(1)])

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    one, other = experiments(workspace)
    assert one["status"] == "keep"
    # fixing item 1 instead of item 0: one win, one loss against the best, at the same score
    assert other["status"] == "discard" and other["reason"].startswith("same score as the best")


def test_a_paired_level_out_of_range_is_named(cli, workspace, key, llm_server):
    folder = folder_for(workspace, llm_server, [fixes(0)], budget="paired_level = 2")

    result = cli("recipes", "validate", folder)

    assert result.exit_code != 0 and "paired_level" in result.output and "Traceback" not in result.output


# -- ties ------------------------------------------------------------------------------------


def test_a_shorter_view_that_ties_is_kept_when_its_re_measurement_ties_too(cli, workspace, key, llm_server):
    task_model(llm_server)
    # temperature 0.7: not deterministic, so the tie is measured again (and ties again)
    folder = folder_for(workspace, llm_server, [fixes(0, 1, 2, 3, 4, 5) + "Be brief.\n", fixes(0, 1, 2, 3, 4, 5)],
                        metric="temperature = 0.7")

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    longer, shorter = experiments(workspace)
    assert longer["status"] == "keep"
    assert shorter["status"] == "keep" and shorter["reason"] == "scores the same as the best with a shorter view (simplicity wins ties)"
    assert json.loads(shorter["samples"]) == [0.6, 0.6]


# -- every example's score ---------------------------------------------------------------------


def test_every_train_example_score_reaches_the_agent_and_comes_back_on_resume(cli, workspace, key, llm_server):
    task_model(llm_server)
    folder = folder_for(workspace, llm_server, [fixes(0, 1, 2, 3, 4, 5), fixes(7)])

    assert cli("run", folder, "--yes").exit_code == 0
    store = Store(workspace / ".overnight" / "overnight.db")
    state = RunState.restore(store, store.latest_run("paired")["id"], Spend())
    store.close()

    kept, other = state.history
    assert kept.scores == {f"e{i}": (1.0 if i < 6 else 0.0) for i in range(N)}
    assert other.scores == {f"e{i}": (1.0 if i == 7 else 0.0) for i in range(N)}
    assert state.best.scores == kept.scores


# -- minibatch screening -------------------------------------------------------------------------


def test_the_dataset_metric_measures_only_the_examples_asked_for(tmp_path, key, llm_server):
    from overnight.core.budget import Budget
    from overnight.core.llm import Gateway
    from overnight.core.options import check
    from overnight.plugins.dataset import DatasetMetric

    task_model(llm_server)
    folder = folder_for(tmp_path, llm_server, [])
    values = check({"file": "examples.jsonl", "expected_field": "label", "task_model": "openai/task",
                    "api_base": llm_server.url, "holdout": 0}, DatasetMetric.options).values
    metric = DatasetMetric(values, folder)
    metric.llm = Gateway(None, Budget(), Spend())
    (folder / "p.j2").write_text(BASE + fixes(2))

    m = metric.measure(folder / "p.j2", folder, MeasureRequest(30, examples=["e2", "e5", "e9"]))
    none = metric.measure(folder / "p.j2", folder, MeasureRequest(30, examples=["e99"]))

    assert [e.id for e in m.examples] == ["e2", "e5", "e9"] and m.value == pytest.approx(1 / 3)
    assert sum(1 for r in llm_server.requests if r["model"] == "task") == 3
    assert none.status == "crash" and "none of the examples asked for (e99) is in the train split" in none.reason


def test_a_proposal_that_loses_on_its_minibatch_is_discarded_unmeasured_on_the_rest(cli, workspace, key, llm_server):
    world = llm_server.simulate(seed=1)
    folder = workspace / "sim"
    world.write_recipe(folder, llm_server.url, agent='strategy = "reflective"\nscreen = 4', budget="experiments = 14")

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    calls = dict(conn.execute("select experiment_id, count(*) from llm_calls where role = 'task' and cached = 0 "
                              "group by experiment_id").fetchall())
    conn.close()
    exps = experiments(workspace)
    screened = [e for e in exps if e["reason"].startswith("screened out: on a minibatch of 4 train examples")]
    full = [e for e in exps if e["status"] in ("keep", "discard") and e not in screened]
    assert screened and full
    assert all(e["status"] == "discard" and e["score"] is None and calls[e["id"]] == 4 for e in screened)
    assert all("not measured on all train examples" in e["reason"] for e in screened)
    train = len([1 for line in (folder / "examples.jsonl").read_text().splitlines() if line]) - 1
    assert all(calls.get(e["id"], 0) > 4 for e in full) and train > 4
