"""Confirmation at the end of a run: the baseline and the best measured again, afresh."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from overnight.core.confirm import Confirmation, conclude
from tests.conftest import write
from tests.data.core.kit import NOISY, logs_beside

# A noisy metric whose draws are written in the file it scores: the n-th measurement of a
# text returns the n-th number of that text. Nothing about the text is better or worse;
# only the draws differ, so a gain is luck by construction.
DRAWS = NOISY

RECIPE = """
[recipe]
name = "{name}"

[surface]
kind = "text"
path = "draws.txt"

[metric]
kind = "python"
file = "score.py"
deterministic = {deterministic}

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
experiments = 5
k = {k}
"""


def recipe(folder: Path, baseline: str, proposals: list[str], *, deterministic: bool = False, k: float = 0.5,
           score: str = DRAWS, name: str = "draws") -> Path:
    lines = "\n".join(json.dumps({"view": v + "\n", "rationale": f"try {v}"}) for v in proposals)
    write(folder, {"recipe.toml": RECIPE.format(name=name, deterministic=str(deterministic).lower(), k=k),
                   "score.py": score, "proposals.jsonl": lines + "\n"})
    (folder / "draws.txt").write_text(baseline + "\n")
    return logs_beside(folder)


def the_run(workspace: Path) -> dict:
    with sqlite3.connect(workspace / ".overnight" / "overnight.db") as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("select * from runs order by id desc").fetchone())


def test_a_lucky_keep_of_a_noisy_metric_does_not_hold_when_measured_again(workspace, cli):
    # Baseline draws 0.50, 0.52, 0.48 (noise 0.02; with k = 0.5 the bar is 0.01). The candidate
    # draws 0.70 and then 0.68 on its confirming re-measurement: kept, by luck.
    folder = recipe(workspace / "noisy", "0.50 0.52 0.48 0.50 0.49 0.51", ["0.70 0.68 0.50 0.49 0.48"])
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output

    assert "Kept 1 of 1 experiments" in result.output
    assert "Score (maximize): baseline 0.5 -> best 0.69 (gain +38.0%), experiment 1:1." in result.output
    # Measured again three times each, in turns: the best is no better than the baseline.
    assert "       confirmed: baseline 0.5 -> best 0.49 (gain -2.0%)  << did NOT hold" in result.output
    assert ("The gain did not hold: measured again (3 fresh samples each), the best scores 0.49 against "
            "the baseline's 0.5, worse (reported gain 0.19).") in result.output
    run = the_run(workspace)
    assert (run["confirmed_baseline"], run["confirmed_best"], run["confirmed_held"]) == (pytest.approx(0.5), pytest.approx(0.49), 0)
    assert run["best_score"] == pytest.approx(0.69)  # the run's own figures are kept as they were
    assert run["experiments"] == 1  # confirming is not an experiment
    calls = (folder / "calls.log").read_text().splitlines()
    assert len(calls) == 3 + 2 + 6


def test_a_real_gain_holds(workspace, cli):
    score = "def score(path):\n    return len(open(path).read().split())\n"
    folder = recipe(workspace / "words", "one two", ["one two three four"], deterministic=True, k=2, score=score)
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "       confirmed: baseline 2 -> best 4 (gain +100.0%)  held" in result.output
    assert "The gain held" not in result.output  # the "held" mark says it once
    assert the_run(workspace)["confirmed_held"] == 1


def test_nothing_kept_means_nothing_to_confirm(workspace, cli):
    score = "def score(path):\n    return len(open(path).read().split())\n"
    folder = recipe(workspace / "flat", "one two", ["one"], deterministic=True, score=score)
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "confirmed:" not in result.output
    run = the_run(workspace)
    assert run["confirmed_best"] is None and run["confirmation"] is None


def test_a_best_that_fails_when_measured_again_did_not_hold():
    c = Confirmation(baseline=1.0, samples={"baseline": [1.0]}, problem="the best could not be measured again (crash: boom)")
    conclude(c, reported=2.0, baseline=1.0, goal="maximize", run_noise=0.0, min_delta=0.0, k=2.0)
    assert c.held is False
    assert c.note == "The gain did not hold: the best could not be measured again (crash: boom)."
    assert c.row()["confirmed_held"] == 0


def test_a_gain_within_the_bar_did_not_hold_and_a_minimized_one_can_hold():
    c = Confirmation(baseline=10.0, best=10.5, samples={"baseline": [10.0, 10.0], "best": [10.0, 11.0]})
    conclude(c, reported=12.0, baseline=10.0, goal="maximize", run_noise=0.1, min_delta=0.0, k=2.0)
    # The spread of the fresh samples widens the bar: sqrt((0 + 0.5) / 2) * 2 = 1.
    assert c.held is False and "within the noise bar of 1" in c.note

    c = Confirmation(baseline=10.0, best=7.0, samples={"baseline": [10.0], "best": [7.0]})
    conclude(c, reported=6.0, baseline=10.0, goal="minimize", run_noise=0.0, min_delta=1.0, k=2.0)
    assert c.held is True and c.note.startswith("The gain held: measured again (1 fresh sample each), it is 3")


def test_a_dataset_run_confirms_its_gain_on_holdout_too(workspace, cli, llm_server, monkeypatch):
    from tests.test_contamination import GOOD, dataset_recipe, task_model

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-confirm-0123456789")
    llm_server.add_rule(lambda r: r.get("model") == "task-model", task_model)
    folder = dataset_recipe(workspace / "intents", llm_server, [GOOD])
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output

    assert "Score (maximize): baseline 0 -> best 1 (gain +1), experiment 1:1." in result.output
    assert "       confirmed: baseline 0 -> best 1 (gain +1)  held" in result.output
    assert "Holdout: baseline 0 -> best 1." in result.output
    assert "confirmed: baseline 0 -> best 1 (gain +1)\n" in result.output  # under the holdout line
    run = the_run(workspace)
    assert (run["confirmed_holdout_baseline"], run["confirmed_holdout_best"]) == (0.0, 1.0)
    # Fresh samples: the confirming calls went to the model again, not to the cache.
    prompts = [r["messages"][-1]["content"] for r in llm_server.requests]
    good = [p for p in prompts if p.startswith("What does this Ubuntu user want? One of:")]
    assert len(good) == 23 * 2 + 10 * 2  # train when kept and confirmed; holdout at the end and confirmed


async def test_the_spend_cap_stops_confirming_and_the_summary_says_so():
    from overnight.core.confirm import measure_again
    from overnight.core.contracts import MeasureRequest
    from overnight.core.llm import BudgetExceeded

    asked = []

    class Capped:  # an executor whose every measurement would pass the spend cap
        def measure(self, view, request, guards=True):
            asked.append((view, request.cache))
            raise BudgetExceeded("spend cap reached ($0.5)")

    c = await measure_again(Capped(), {"baseline": "a", "best": "b"}, times=3, request=MeasureRequest(5))
    conclude(c, reported=2.0, baseline=1.0, goal="maximize", run_noise=0.0, min_delta=0.0, k=2.0)
    assert asked == [("a", False)]  # fresh (no cache), and nothing more once the cap is reached
    assert c.held is None
    assert c.note == ("Not confirmed: the baseline could not be measured again (Spend cap reached ($0.5); "
                      "raise [budget] usd in the recipe to allow more).")
