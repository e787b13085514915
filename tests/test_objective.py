"""One objective from several metrics: `[[metric]]` tables with weights, each turned to
"higher is better" by its goal, each component stored with the experiment and shown."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write
from tests.data.core.kit import experiments, no_traceback, rows

# Two offline metrics of the same text: reading ease (up is better) and length (down is better).
TWO_METRICS = """
[recipe]
name = "blurb"

[surface]
kind = "text"
path = "blurb.txt"

[[metric]]
kind = "text-stats"
stat = "reading_ease"
label = "ease"
weight = 1.0

[[metric]]
kind = "text-stats"
stat = "words"
goal = "minimize"
label = "length"
weight = 2.0

[agent]
kind = "scripted"
file = "proposals.jsonl"
"""

BASELINE = "Notwithstanding considerable organisational complexity, implementation proceeded satisfactorily.\n"
SHORT_AND_PLAIN = "It went well. We are glad.\n"
LONG_AND_PLAIN = "It went well. We are glad. The team did good work. We had fun. We got it done on time.\n"


def proposals(*views: str) -> str:
    return "".join(json.dumps({"view": v, "rationale": f"try {i}"}) + "\n" for i, v in enumerate(views, 1))


def expected(text: str) -> tuple[float, float, float]:
    from overnight.plugins.text_stats import stats

    s = stats(text)
    return s["reading_ease"], s["words"], 1.0 * s["reading_ease"] - 2.0 * s["words"]


def test_weighted_metrics_give_one_score_and_each_component_is_stored_and_shown(workspace, cli):
    folder = write(workspace / "blurb", {
        "recipe.toml": TWO_METRICS,
        "blurb.txt": BASELINE,
        "proposals.jsonl": proposals(SHORT_AND_PLAIN, LONG_AND_PLAIN),
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output

    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "keep", "discard"]
    for e, text in zip(exps, (BASELINE, SHORT_AND_PLAIN, LONG_AND_PLAIN)):
        ease, words, score = expected(text)
        assert json.loads(e["components"]) == {"ease": pytest.approx(ease), "length": words}
        assert e["score"] == pytest.approx(score)
    # The long plain text reads as easily but costs 2 per extra word: it loses.
    assert exps[2]["score"] < exps[1]["score"]

    shown = cli("show", "1")
    assert shown.exit_code == 0
    ease, words, _ = expected(SHORT_AND_PLAIN)
    line = next(x for x in shown.output.splitlines() if "components" in x)
    assert "ease" in line and "length" in line and str(words) in line


def test_dry_run_describes_the_weighted_sum(workspace, cli):
    folder = write(workspace / "blurb", {"recipe.toml": TWO_METRICS, "blurb.txt": BASELINE, "proposals.jsonl": ""})
    result = cli("run", folder, "--dry-run", "--yes")
    assert result.exit_code == 0, result.output
    assert "weighted sum, higher is better: 1 x ease (maximize) + 2 x length (minimize)" in result.output


def test_two_metrics_of_one_kind_without_labels_keep_both_components(workspace, cli):
    text = TWO_METRICS.replace('label = "ease"\n', "").replace('label = "length"\n', "")
    folder = write(workspace / "blurb", {"recipe.toml": text, "blurb.txt": BASELINE, "proposals.jsonl": proposals(SHORT_AND_PLAIN)})
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    components = json.loads(exps[1]["components"])
    ease, words, score = expected(SHORT_AND_PLAIN)
    assert components == {"text-stats #1": pytest.approx(ease), "text-stats #2": words}
    assert exps[1]["score"] == pytest.approx(score)


def test_a_failing_component_makes_the_experiment_a_crash_naming_it(workspace, cli):
    text = TWO_METRICS.replace('kind = "text-stats"\nstat = "words"', 'kind = "python"\nfile = "count.py"')
    folder = write(workspace / "blurb", {
        "recipe.toml": text,
        "blurb.txt": BASELINE,
        "count.py": """
            def score(path):
                text = open(path).read()
                if "CRASH" in text:
                    raise ValueError("cannot count this")
                return len(text.split())
            """,
        "proposals.jsonl": proposals("CRASH now. Please.\n", SHORT_AND_PLAIN),
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert no_traceback(result.output)
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "crash", "keep"]
    assert exps[1]["reason"].startswith("length: the function failed")
    assert "cannot count this" in exps[1]["reason"]


def test_duplicate_metric_labels_are_a_recipe_error(workspace, cli):
    text = TWO_METRICS.replace('label = "length"', 'label = "ease"')
    folder = write(workspace / "blurb", {"recipe.toml": text, "blurb.txt": BASELINE, "proposals.jsonl": ""})
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert no_traceback(result.output)
    assert "recipe.toml:" in result.output and "label" in result.output and "'ease'" in result.output
    assert not (workspace / ".overnight" / "overnight.db").exists() or "runs" not in result.output


def test_the_search_agent_climbs_a_weighted_objective_of_two_goals(workspace, cli):
    # cost = (x - 3)^2 is minimized, reach = x is maximized with half the weight:
    # the sum -(x - 3)^2 + 0.5 x peaks at x = 3.25.
    folder = write(workspace / "mix", {
        "recipe.toml": """
            [recipe]
            name = "mix"

            [surface]
            kind = "config"
            path = "knobs.toml"
            params = [{ key = "x", min = -10, max = 10 }]

            [[metric]]
            kind = "command"
            run = "awk -f {recipe}/cost.awk {file}"
            goal = "minimize"
            label = "cost"

            [[metric]]
            kind = "command"
            run = "awk -f {recipe}/reach.awk {file}"
            goal = "maximize"
            label = "reach"
            weight = 0.5

            [agent]
            kind = "search"
            seed = 5

            [budget]
            experiments = 30
            """,
        "knobs.toml": "x = 0.0\n",
        "cost.awk": '$1 == "x" { print ($3 - 3) ^ 2 }\n',
        "reach.awk": '$1 == "x" { print $3 }\n',
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    for e in exps:
        c = json.loads(e["components"])
        assert e["score"] == pytest.approx(-c["cost"] + 0.5 * c["reach"])
    best = max(exps, key=lambda e: e["score"])
    x = json.loads(best["components"])["reach"]
    assert abs(x - 3.25) < 0.3, f"best x = {x}, the peak is at 3.25"
    assert best["status"] == "keep"


def test_each_component_carries_the_goal_its_metric_table_gives(workspace, cli):
    from overnight.core.recipe import load
    from overnight.core.runner import build
    from overnight.core.store import Store

    folder = write(workspace / "blurb", {"recipe.toml": TWO_METRICS, "blurb.txt": BASELINE, "proposals.jsonl": ""})
    setup = build(load(folder), Store(workspace / "parts.db"))
    assert [(w.label, w.goal, w.metric.goal) for w in setup.objective.metrics] == [
        ("ease", "maximize", "maximize"), ("length", "minimize", "minimize")]
    # The run records each metric's goal with its weight, beside the plugin's own keys.
    assert cli("run", folder, "--yes").exit_code == 0
    config = json.loads(rows(workspace / ".overnight" / "overnight.db", "select config from runs")[0]["config"])
    assert [(m["weight"], m["goal"], m["stat"]) for m in config["metrics"]] == [
        (1.0, "maximize", "reading_ease"), (2.0, "minimize", "words")]
