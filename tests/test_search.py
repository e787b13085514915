"""The `search` agent: Optuna tunes a config file's keys against a scorer with a known optimum.

Every run is real: a recipe folder, `overnight run`, a Python scorer in a subprocess,
the SQLite store read back with plain sqlite3.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import tomllib

import pytest

from tests.conftest import write
from tests.data.core.kit import experiments, no_traceback, rows

# The scorer: a bowl whose bottom is at x = 3, y = -1 (value 0). awk keeps each measurement
# a few milliseconds, so a search of forty experiments stays quick.
SCORE = """
$1 == "x" { x = $3 }
$1 == "y" { y = $3 }
END { print (x - 3) ^ 2 + (y + 1) ^ 2 }
"""
READ_X = '$1 == "x" { print $3 }\n'

PARAMS = """
# The knobs of a model.
[model]
x = 0.0  # the first knob
y = 0.0

[train]
epochs = 3
kind = "a"
"""


def recipe(workspace, *, params: str, agent: str = "", budget: str = "experiments = 40", goal: str = "minimize",
           extra: str = "", name: str = "bowl"):
    return write(workspace / name, {
        "recipe.toml": f"""
            [recipe]
            name = "{name}"

            [surface]
            kind = "config"
            path = "params.toml"
            params = [{params}]

            [metric]
            kind = "command"
            run = "awk -f {{recipe}}/score.awk {{file}}"
            goal = "{goal}"
            {extra}
            [agent]
            kind = "search"
            {agent}

            [budget]
            {budget}
            """,
        "params.toml": PARAMS,
        "score.awk": SCORE,
    })


XY = '{ key = "model.x", min = -10, max = 10 }, { key = "model.y", min = -10, max = 10 }'


def db(workspace):
    return workspace / ".overnight" / "overnight.db"


def values_in(view: str) -> dict:
    d = tomllib.loads(view)
    return {"model.x": d["model"]["x"], "model.y": d["model"]["y"], "train.epochs": d["train"]["epochs"], "train.kind": d["train"]["kind"]}


def views(workspace) -> dict[int, str]:
    found = rows(db(workspace), "select e.seq, c.view from experiments e join candidates c on c.digest = e.candidate")
    return {r["seq"]: r["view"] for r in found}


def test_tpe_finds_the_bottom_of_a_bowl(workspace, cli):
    folder = recipe(workspace, params=XY, agent="seed = 7")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert exps[0]["score"] == 10  # (0 - 3)^2 + (0 + 1)^2
    best = min(e["score"] for e in exps if e["status"] in ("keep", "baseline"))
    assert best < 0.5, f"best {best} is far from the optimum 0"

    # Each experiment names the values it tried, keeps them in its meta, and its view holds them.
    seen = views(workspace)
    for e in exps[1:]:
        meta = json.loads(e["meta"])
        assert set(meta["values"]) == {"model.x", "model.y"} and isinstance(meta["trial"], int)
        x, y = meta["values"]["model.x"], meta["values"]["model.y"]
        assert e["rationale"] == f"model.x={x:.6g}, model.y={y:.6g}"
        written = values_in(seen[e["seq"]])
        assert written["model.x"] == pytest.approx(x, rel=1e-5) and written["model.y"] == pytest.approx(y, rel=1e-5)
        assert written["train.kind"] == "a"  # an undeclared key never moves
    # The user's file was not written by the run.
    assert (folder / "params.toml").read_text() == PARAMS.lstrip("\n")


def test_a_goal_to_maximize_is_searched_upwards(workspace, cli):
    folder = recipe(workspace, params=XY, agent="seed = 1", goal="maximize", budget="experiments = 25")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    kept = [e["score"] for e in exps if e["status"] == "keep"]
    assert kept and kept == sorted(kept) and kept[-1] > 100  # the rim of the bowl, far above 10


@pytest.mark.parametrize("sampler", ["random", "cmaes", "tpe"])
def test_each_sampler_improves_on_the_baseline_with_mixed_parameters(workspace, cli, sampler):
    params = XY + ', { key = "train.epochs", min = 1, max = 9, integer = true }, { key = "train.kind", choices = ["a", "b"] }'
    folder = recipe(workspace, params=params, agent=f'sampler = "{sampler}"\nseed = 2\nstartup_trials = 5',
                    budget="experiments = 20")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert {e["status"] for e in exps[1:]} <= {"keep", "discard"}
    assert min(e["score"] for e in exps) < exps[0]["score"]
    for e in exps[1:]:
        values = json.loads(e["meta"])["values"]
        assert isinstance(values["train.epochs"], int) and 1 <= values["train.epochs"] <= 9
        assert values["train.kind"] in ("a", "b")


GRID = ('{ key = "model.x", min = 0, max = 4, step = 2 }, { key = "train.epochs", min = 2, max = 4, integer = true }, '
        '{ key = "train.kind", choices = ["a", "b"] }')


def grid_points():
    return {(x, e, k) for x, e, k in itertools.product([0.0, 2.0, 4.0], [2, 3, 4], ["a", "b"])}


def test_grid_visits_every_point_once_then_stops_by_itself(workspace, cli):
    folder = recipe(workspace, params=GRID, agent='sampler = "grid"\nseed = 5', budget="experiments = 100")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "every value was measured" in result.output
    exps = experiments(db(workspace))
    # 18 points; the baseline (x = 0, epochs = 3, kind = a) is one of them and is not measured again.
    assert len(exps) == 18 and all(e["status"] in ("keep", "discard") for e in exps[1:])
    visited = {(v["model.x"], v["train.epochs"], v["train.kind"]) for v in map(values_in, views(workspace).values())}
    assert visited == grid_points()


def test_a_small_space_is_measured_point_by_point_without_duplicates(workspace, cli):
    folder = recipe(workspace, params='{ key = "train.epochs", min = 1, max = 5, integer = true }',
                    agent="seed = 3", budget="experiments = 50")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "every value was measured" in result.output
    exps = experiments(db(workspace))
    assert [e["status"] for e in exps].count("duplicate") == 0
    assert sorted(json.loads(e["meta"])["values"]["train.epochs"] for e in exps[1:]) == [1, 2, 4, 5]


def test_resume_tells_the_sampler_every_recorded_result_first(workspace, cli):
    folder = recipe(workspace, params=GRID, agent='sampler = "grid"\nseed = 5', budget="experiments = 6")
    first = cli("run", folder, "--yes")
    assert first.exit_code == 0, first.output
    first_views = set(views(workspace).values())
    assert len(first_views) == 7
    # As if the first session had been killed mid-way: the run is unfinished, with budget left.
    with sqlite3.connect(db(workspace)) as conn:
        conn.execute("update runs set status = 'running', pid = 0")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("experiments = 6", "experiments = 100"))

    resumed = cli("run", folder, "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "every value was measured" in resumed.output
    exps = experiments(db(workspace))
    assert len(rows(db(workspace), "select id from runs")) == 1
    # The resumed session measured only the 11 points the first had not: no point twice, no duplicate.
    assert len(exps) == 18 and [e["status"] for e in exps].count("duplicate") == 0
    assert {(v["model.x"], v["train.epochs"], v["train.kind"]) for v in map(values_in, views(workspace).values())} == grid_points()
    assert not first_views & {views(workspace)[e["seq"]] for e in exps[7:]}


def test_resume_with_tpe_continues_the_same_study(workspace, cli):
    folder = recipe(workspace, params=XY, agent="seed = 4", budget="experiments = 8")
    assert cli("run", folder, "--yes").exit_code == 0
    with sqlite3.connect(db(workspace)) as conn:
        conn.execute("update runs set status = 'stopped', pid = 0")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("experiments = 8", "experiments = 12"))
    resumed = cli("run", folder, "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    exps = experiments(db(workspace))
    assert [e["seq"] for e in exps] == list(range(13))
    # The new study was told the baseline and the eight earlier results before it asked:
    # its first trial is number 9, and no point of the first session came back.
    assert [json.loads(e["meta"])["trial"] for e in exps[9:]] == [9, 10, 11, 12]
    assert json.loads(exps[1]["meta"])["baseline"] == {"model.x": 0.0, "model.y": 0.0}


def test_parallel_experiments_ask_distinct_points(workspace, cli):
    folder = recipe(workspace, params=XY, agent='sampler = "tpe"\nseed = 9\nstartup_trials = 4',
                    budget="experiments = 16\nparallel = 4")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert len(exps) == 17 and {e["status"] for e in exps[1:]} <= {"keep", "discard"}
    assert len({e["candidate"] for e in exps}) == 17
    assert sorted(json.loads(e["meta"])["trial"] for e in exps[1:]) == list(range(1, 17))


def test_a_guard_failure_counts_as_a_bad_result_for_the_sampler(workspace):
    from overnight.core.recipe import load
    from overnight.core.runner import build, run
    from overnight.core.store import Store

    # The bowl's bottom is at x = 3, but a guard keeps x at most 1: the best allowed is x = 1.
    folder = recipe(workspace, params=XY, agent="seed = 11", budget="experiments = 40",
                    extra='\n[[guards]]\nkind = "command"\nrun = "awk -f {recipe}/x.awk {file}"\nmax = 1\n')
    (folder / "x.awk").write_text(READ_X)
    store = Store(db(workspace))
    setup = build(load(folder), store)
    summary = run(setup)
    exps = experiments(db(workspace))
    failed = [e for e in exps if e["status"] == "guard_failed"]
    assert failed, "expected the search to cross the guard at least once"
    study = setup.agent.study
    for e in failed:
        # The trials that hold this point (asked again later, it is told the same again).
        told = [t for t in study.trials if t.params == json.loads(e["meta"])["values"]]
        assert told
        # Told as no better than the worst known result (the study maximizes minus the score),
        # never as the good score it measured.
        assert all(t.value <= -exps[0]["score"] < -e["score"] for t in told)
    best_x = values_in(views(workspace)[summary.best_seq])["model.x"]
    assert best_x <= 1
    store.close()


def test_search_on_a_surface_without_parameters_is_refused_before_anything_runs(workspace, cli):
    folder = write(workspace / "story", {
        "recipe.toml": """
            [recipe]
            name = "story"

            [surface]
            kind = "text"
            path = "story.txt"

            [metric]
            kind = "text-stats"
            stat = "words"

            [agent]
            kind = "search"
            """,
        "story.txt": "Once upon a time.\n",
    })
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert no_traceback(result.output)
    assert "search agent tunes typed parameters" in result.output and "'text' surface has none" in result.output
    assert not db(workspace).exists() or not rows(db(workspace), "select id from runs")
    assert (folder / "story.txt").read_text() == "Once upon a time.\n"


def test_a_parameter_with_both_a_step_and_a_log_scale_is_refused(workspace, cli):
    folder = recipe(workspace, params='{ key = "model.x", min = 0.001, max = 10, step = 0.5, log = true }')
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert no_traceback(result.output)
    assert "parameter 'model.x' cannot have both a step and a log scale" in result.output
    assert not db(workspace).exists() or not rows(db(workspace), "select id from runs")


def test_an_unknown_sampler_is_a_recipe_error(workspace, cli):
    folder = recipe(workspace, params=XY, agent='sampler = "annealing"')
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert no_traceback(result.output)
    assert "[agent] sampler" in result.output and "'tpe'" in result.output


def test_crashes_are_told_as_failures_and_the_search_goes_on(workspace):
    from optuna.trial import TrialState

    from overnight.core.recipe import load
    from overnight.core.runner import build, run
    from overnight.core.store import Store

    folder = recipe(workspace, params=XY, agent="seed = 2", budget="experiments = 20\nmax_failures = 20")
    # The scorer refuses any x above 5, as a real script might on a bad setting.
    (folder / "score.awk").write_text('$1 == "x" && $3 > 5 { exit 1 }\n' + SCORE)
    store = Store(db(workspace))
    setup = build(load(folder), store)
    summary = run(setup)
    exps = experiments(db(workspace))
    crashed = [e for e in exps if e["status"] == "crash"]
    assert crashed and len(exps) == 21 and summary.best < exps[0]["score"]
    for e in crashed:
        values = json.loads(e["meta"])["values"]
        assert values["model.x"] > 5
        told = [t for t in setup.agent.study.trials if t.params == values]
        assert told and all(t.state == TrialState.FAIL for t in told)
    store.close()
