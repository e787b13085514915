"""`overnight check`: a metric is audited before a run spends anything on it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import write

RECIPE = """
[recipe]
name = "{name}"

[surface]
kind = "text"
path = "doc.txt"
{region}
[metric]
{metric}

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
experiments = 20
{budget}
"""

DOC = "Our plan for the launch.\nWe ship on Monday.\nSupport answers within a day.\nPrices stay the same.\n"


def recipe(folder: Path, metric: str, files: dict[str, str], name: str = "audit", region: str = "",
           budget: str = "", doc: str = DOC) -> Path:
    text = RECIPE.format(name=name, metric=metric, region=region, budget=budget)
    write(folder, {"recipe.toml": text, "proposals.jsonl": "", **files})
    (folder / "doc.txt").write_text(doc)
    return folder


def checks(workspace: Path) -> list[dict]:
    with sqlite3.connect(workspace / ".overnight" / "overnight.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("select * from checks order by id")]


def test_a_scorer_that_rewards_length_is_gameable(workspace, cli):
    # Longer is "better": padding the file with itself beats the real thing.
    folder = recipe(workspace / "length", 'kind = "python"\nfile = "score.py"', {
        "score.py": "def score(path):\n    return len(open(path).read().split())\n",
    })
    result = cli("check", folder, "--yes")

    assert result.exit_code == 1, result.output
    assert "No agent is called: this spends only what its measurements cost" in result.output
    assert "Baseline      18 (maximize), 2 measurements, spread 0" in result.output
    assert "Degenerate    repeated twice: GAMEABLE: scores 36, better than the baseline (18)" in result.output
    assert "Degenerate    empty: scores 0, worse than the baseline, as it should" in result.output
    assert "Verdict: risky" in result.output
    assert "The metric rewards length: add a [[guards]] with a max on the length" in result.output
    # The check is kept in the store, against this recipe's digest.
    [row] = checks(workspace)
    assert (row["recipe"], row["verdict"]) == ("audit", "risky")
    report = json.loads(row["report"])
    assert [p["verdict"] for p in report["probes"]] == ["worse", "worse", "gameable"]


def test_an_error_count_that_an_empty_file_wins_is_gameable(workspace, cli):
    # A linter that counts long sentences: fewer is better, and no text has none at all.
    lint = (
        "import sys\n"
        "lines = open(sys.argv[1]).read().splitlines()\n"
        "print(sum(1 for line in lines if len(line.split()) > 3))\n"
    )
    folder = recipe(workspace / "lint", 'kind = "command"\nrun = "python3 {recipe}/lint.py {file}"\ngoal = "minimize"',
                    {"lint.py": lint})
    result = cli("check", folder, "--yes")

    assert result.exit_code == 1, result.output
    assert "Baseline      4 (minimize)" in result.output
    assert "Degenerate    empty: GAMEABLE: scores 0, better than the baseline (4)" in result.output
    assert "An empty file should never win: add a [[guards]] that fails on it" in result.output
    # Padding doubles the errors: that one is fine.
    assert "Degenerate    repeated twice: scores 8, worse than the baseline, as it should" in result.output


def test_a_sound_metric_is_ready_and_a_tie_of_a_longer_view_is_harmless(workspace, cli):
    # Counts the facts a reader needs; padding repeats them (a tie) but never wins a tie.
    score = (
        "FACTS = ['Monday', 'a day', 'Prices']\n"
        "def score(path):\n"
        "    text = open(path).read()\n"
        "    return sum(fact in text for fact in FACTS)\n"
    )
    folder = recipe(workspace / "facts", 'kind = "python"\nfile = "score.py"', {"score.py": score})
    result = cli("check", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert "Degenerate    first half only: scores 1, worse than the baseline, as it should" in result.output
    assert "Degenerate    repeated twice: scores 3, as well as the baseline; harmless" in result.output
    assert "Keep rule     a change must gain more than 0" in result.output
    assert "Whole budget  20 experiments: about" in result.output
    assert "Verdict: ready" in result.output
    assert checks(workspace)[0]["verdict"] == "ready"


def test_a_deterministic_metric_that_is_not_is_flagged(workspace, cli):
    score = "import random\ndef score(path):\n    return random.random()\n"
    folder = recipe(workspace / "dice", 'kind = "python"\nfile = "score.py"', {"score.py": score})
    result = cli("check", folder, "--yes")

    assert result.exit_code == 1, result.output
    assert "The metric says it is deterministic, but the same file scored" in result.output
    assert "Set deterministic = false in [metric]" in result.output


def test_a_noisy_metric_is_measured_five_times_and_its_bar_reported(workspace, cli):
    # The noise comes from the clock's nanoseconds: real, and far larger than any change.
    score = "import time\ndef score(path):\n    return 100 + time.time_ns() % 1000 / 10\n"
    folder = recipe(workspace / "noisy", 'kind = "python"\nfile = "score.py"\ndeterministic = false', {"score.py": score})
    result = cli("check", folder, "--yes")

    assert "Measuring the baseline 5 times..." in result.output
    report = json.loads(checks(workspace)[0]["report"])
    assert len(report["samples"]) == 5
    assert report["bar"] == 2 * report["noise"] > 0  # k = 2 by default
    assert f"a change must gain more than" in result.output
    # --repeats overrides the default.
    result = cli("check", folder, "--yes", "--repeats", "3")
    assert "Measuring the baseline 3 times..." in result.output
    assert len(json.loads(checks(workspace)[1]["report"])["samples"]) == 3
    # One measurement shows no noise: the report says so rather than "noise 0".
    once = cli("check", folder, "--yes", "-n", "1")
    assert "1 measurement: its noise is not known (-n 2 or more measures it)" in once.output
    assert "spread 0" not in once.output and "x noise 0" not in once.output


def test_a_metric_that_crashes_on_the_baseline_is_broken_with_its_last_lines(workspace, cli):
    score = "def score(path):\n    words = open(path).read().split()\n    return 1 / (len(words) - 18)\n"
    folder = recipe(workspace / "crash", 'kind = "python"\nfile = "score.py"', {"score.py": score})
    before = (folder / "doc.txt").read_text()
    result = cli("check", folder, "--yes")

    assert result.exit_code == 2, result.output
    assert "Verdict: broken" in result.output
    assert "The baseline could not be measured (crash): the function failed: ZeroDivisionError: division by zero." in result.output
    assert "return 1 / (len(words) - 18)" in result.output  # the crash's last lines
    assert "Degenerate" not in result.output  # nothing else was measured
    assert (folder / "doc.txt").read_text() == before
    assert checks(workspace)[0]["verdict"] == "broken"


def test_a_marked_region_is_emptied_halved_and_padded_not_the_whole_file(workspace, cli):
    doc = "# keep me\n<<<\nalpha beta\ngamma delta\n>>>\n# footer\n"
    folder = recipe(
        workspace / "region", 'kind = "python"\nfile = "score.py"', name="region",
        region='region_start = "<<<"\nregion_end = ">>>"', doc=doc,
        files={"score.py": "def score(path):\n    return len(open(path).read().split())\n"},
    )
    result = cli("check", folder, "--yes")

    # The generic views would break the markers; the surface's own views keep them.
    assert "refused by the surface" not in result.output
    assert "Degenerate    empty: scores 7, worse than the baseline" in result.output
    assert "Degenerate    repeated twice: GAMEABLE: scores 15, better than the baseline (11)" in result.output


def test_a_view_the_surface_refuses_cannot_game_it(workspace, cli):
    from overnight.core.audit import degenerate_views

    class Structured:  # a surface with typed parameters gets no free-text views of its own
        def parameters(self):
            return ["price"]

        def degenerate(self, view):
            return {"all zero": "price = 0\n"}

    class Metric:
        def degenerate(self, view):
            return {"the answers only": "42\n", "unchanged": view}

    views = degenerate_views(Structured(), [Metric()], "price = 10\n")
    assert views == {"all zero": "price = 0\n", "the answers only": "42\n"}


def terminal(monkeypatch) -> None:
    """As if overnight ran in a terminal, where it may ask."""
    import overnight.cli.check as check_cli
    import overnight.sharing.trust as trust

    monkeypatch.setattr(check_cli, "_interactive", lambda: True)
    monkeypatch.setattr(trust, "_terminal", lambda: True)


def test_run_offers_the_check_once_and_skips_it_with_yes(workspace, cli, monkeypatch):
    folder = recipe(workspace / "offer", 'kind = "python"\nfile = "score.py"', {
        "score.py": "FACTS = ['Monday']\ndef score(path):\n    return sum(f in open(path).read() for f in FACTS)\n",
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "This recipe was never checked; skipping the check (run `overnight check offer` to audit its metric)." in result.output

    # In a terminal, the person is asked; saying yes runs the check, then the run.
    terminal(monkeypatch)
    folder2 = recipe(workspace / "offer2", 'kind = "python"\nfile = "score.py"', name="offer2", files={
        "score.py": "def score(path):\n    return len(open(path).read())\n",
    })
    result = cli("run", folder2, input="y\ny\ny\n")  # trust it, check it, run anyway
    assert "This recipe was never checked. Check its metric first" in result.output
    assert "Verdict: risky" in result.output
    assert "Start the run anyway?" in result.output
    assert result.exit_code == 0, result.output
    assert "Run " in result.output and "finished" in result.output

    # Checked once: the next run does not ask again.
    result = cli("run", folder2, input="")
    assert "never checked" not in result.output
    assert result.exit_code == 0, result.output


def test_run_stops_when_the_offered_check_finds_the_recipe_broken(workspace, cli, monkeypatch):
    terminal(monkeypatch)
    folder = recipe(workspace / "broken", 'kind = "python"\nfile = "score.py"', {
        "score.py": "def score(path):\n    raise ValueError('no scorer yet')\n",
    })
    result = cli("run", folder, input="y\ny\n")  # trust it, check it
    assert result.exit_code == 2, result.output
    assert "Error: The check found this recipe broken (see above); fix it before running." in result.output
    assert "ValueError: no scorer yet" in result.output
    with sqlite3.connect(workspace / ".overnight" / "overnight.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 0


GUARDED = """
[recipe]
name = "guarded"

[surface]
kind = "text"
path = "doc.txt"

[metric]
kind = "python"
file = "score.py"

[[guards]]
kind = "python"
file = "score.py"
max = {max}
label = "words"

[agent]
kind = "scripted"
file = "proposals.jsonl"
"""


def test_the_advised_guard_makes_a_length_scorer_ready(workspace, cli):
    # The same scorer that rewards length, now with a guard on the number of words.
    score = "def score(path):\n    return len(open(path).read().split())\n"
    write(workspace / "guarded", {"recipe.toml": GUARDED.format(max=25), "score.py": score, "proposals.jsonl": ""})
    (workspace / "guarded" / "doc.txt").write_text(DOC)
    result = cli("check", workspace / "guarded", "--yes")

    assert "Degenerate    repeated twice: scores 36 but a guard refuses it (guard words = 36, above its max 25)" in result.output
    assert "Verdict: ready" in result.output
    assert result.exit_code == 0


def test_a_baseline_that_fails_a_guard_is_a_note_not_a_risk(workspace, cli):
    score = "def score(path):\n    return len(open(path).read().split())\n"
    write(workspace / "guarded", {"recipe.toml": GUARDED.format(max=10), "score.py": score, "proposals.jsonl": ""})
    (workspace / "guarded" / "doc.txt").write_text(DOC)
    result = cli("check", workspace / "guarded", "--yes")

    assert "Note: The baseline fails a guard (guard words = 18, above its max 10): only candidates that fix that can be kept." in result.output
    assert "Verdict: ready" in result.output
    assert result.exit_code == 0


def test_a_check_that_hits_the_spend_cap_is_broken_and_says_why(workspace, cli, llm_server, monkeypatch):
    from tests.test_contamination import dataset_recipe, task_model

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-check-0123456789")
    llm_server.add_rule(lambda r: True, task_model)
    # A priced model and no money at all: the first call is refused before it is made.
    folder = dataset_recipe(workspace / "intents", llm_server, [])
    text = (folder / "recipe.toml").read_text().replace('"openai/task-model"', '"openai/gpt-4o-mini"')
    (folder / "recipe.toml").write_text(text.replace("experiments = 10", "experiments = 10\nusd = 0"))
    result = cli("check", folder, "--yes")

    assert result.exit_code == 2, result.output
    assert "Verdict: broken" in result.output
    assert "The baseline could not be measured (crash): Spend cap reached ($0)" in result.output
    assert "raise [budget] usd in the recipe" in result.output
    assert "Fix what it says, then check again." in result.output
    assert llm_server.count == 0


def test_advice_follows_from_the_figures_when_the_baseline_scores_zero(workspace, cli):
    # A scorer that finds nothing in the file: every view ties the baseline at 0.
    folder = recipe(workspace / "zero", 'kind = "python"\nfile = "score.py"', {
        "score.py": "def score(path):\n    return 0.0\n",
    })
    result = cli("check", folder, "--yes")

    assert "as well as the baseline (0), and a shorter view wins a tie (only because the baseline scores 0 too)" in result.output
    assert "The baseline scores 0, so any shorter view that also scores 0 ties it and is kept" in result.output
    assert "add a [[guards]] that fails on it" not in result.output  # no guard fixes a metric that sees nothing
