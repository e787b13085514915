"""The search agent knows its space: an ordered search for one parameter, a small space
measured point by point, a sampler never asked twice, parallel proposals that differ,
and people's notes that fix or bound a parameter.

Every run is real: a recipe folder, the loop through core.runner or `overnight run`, a
scorer in a subprocess (awk) or a workbook recalculated by the formulas engine, the
SQLite store read back with plain sqlite3. Counts are asserted, never times.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest

from tests.conftest import write
from tests.data.core.kit import experiments, rows

# A scorer with one peak, at x = 23 and kind "b"; a file without `kind` scores on x alone.
SCORE = """
$1 == "x" { x = $3 }
$1 == "kind" { kind = $3 }
END { print -(x - 23) ^ 2 - (kind == "\\"a\\"" ? 5 : 0) }
"""
READ_X = '$1 == "x" { print $3 }\n'


def recipe(workspace, *, params: str, agent: str = "", budget: str = "experiments = 40", guard: str = "",
           start: str = "x = 3\nkind = \"a\"\n", name: str = "peak"):
    folder = write(workspace / name, {
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
            goal = "maximize"
            {guard}
            [agent]
            kind = "search"
            {agent}

            [budget]
            {budget}
            """,
        "params.toml": start,
        "score.awk": SCORE,
        "x.awk": READ_X,
    })
    return folder


X40 = '{ key = "x", min = 0, max = 40, integer = true }'
KIND = '{ key = "kind", choices = ["a", "b"] }'


def db(workspace):
    return workspace / ".overnight" / "overnight.db"


def tried(workspace) -> list[dict]:
    return [json.loads(e["meta"])["values"] for e in experiments(db(workspace))[1:]]


def run_setup(folder, workspace):
    """Runs the recipe through the runner, keeping hold of the agent to read its counts."""
    from overnight.core.recipe import load
    from overnight.core.runner import build, run
    from overnight.core.store import Store

    store = Store(db(workspace))
    setup = build(load(folder), store)
    summary = run(setup)
    store.close()
    return setup.agent, summary


# -- one ordered parameter ------------------------------------------------------------------


def test_one_whole_number_cell_next_to_a_guard_is_found_in_a_few_experiments(workspace):
    """The hidden-style case: profit rises with the units ordered, but the store room holds 73."""
    from openpyxl import Workbook

    folder = workspace / "edge"
    folder.mkdir()
    wb = Workbook()
    ws = wb.active
    ws.title = "Inputs"
    ws["A1"], ws["B1"] = "Units", 20
    model = wb.create_sheet("Model")
    model["A1"], model["B1"] = "Profit", "=Inputs!B1*(12-0.05*Inputs!B1)-40"
    model["A2"], model["B2"] = "Room left", "=730-10*Inputs!B1"
    wb.save(folder / "edge.xlsx")
    (folder / "recipe.toml").write_text("""
[recipe]
name = "edge"

[surface]
kind = "spreadsheet"
path = "edge.xlsx"
cells = [{ ref = "Inputs!B1", min = 1, max = 100, integer = true }]

[metric]
kind = "cell"
ref = "Model!B1"
goal = "maximize"

[[guards]]
kind = "cell"
ref = "Model!B2"
min = 0

[agent]
kind = "search"

[budget]
experiments = 15
""")
    agent, summary = run_setup(folder, workspace)
    exps = experiments(db(workspace))
    units = [json.loads(e["meta"])["values"]["Inputs!B1"] for e in exps[1:]]
    assert len(units) == len(set(units)) == 15 and 20 not in units  # the baseline is not measured again
    best = next(e for e in exps if e["seq"] == summary.best_seq)
    assert json.loads(best["meta"])["values"]["Inputs!B1"] == 73  # the best allowed value, at the guard's edge
    assert units.index(73) + 1 <= 10, units  # found within ten experiments of a hundred values
    assert 74 in units and next(e for e in exps if json.loads(e["meta"] or "{}").get("values", {}).get("Inputs!B1") == 74)["status"] == "guard_failed"
    assert agent.asks == 0  # an ordered search: no sampler was asked anything


def test_a_small_space_is_measured_in_full_and_ends_saying_so(workspace, cli):
    folder = recipe(workspace, params=X40, budget="experiments = 100", start="x = 3\n")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "every value was measured (41 points)" in result.output
    exps = experiments(db(workspace))
    assert [e["status"] for e in exps].count("duplicate") == 0
    assert sorted(v["x"] for v in tried(workspace)) == [x for x in range(41) if x != 3]
    run = rows(db(workspace), "select stop_reason, status from runs")[0]
    assert run["status"] == "finished" and run["stop_reason"] == "every value was measured (41 points)"


def test_an_ordered_search_resumes_without_measuring_a_value_twice(workspace, cli):
    import sqlite3

    folder = recipe(workspace, params=X40, budget="experiments = 6", start="x = 3\n")
    assert cli("run", folder, "--yes").exit_code == 0
    with sqlite3.connect(db(workspace)) as conn:
        conn.execute("update runs set status = 'stopped', pid = 0")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("experiments = 6", "experiments = 100"))
    resumed = cli("run", folder, "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "every value was measured" in resumed.output
    assert sorted(v["x"] for v in tried(workspace)) == [x for x in range(41) if x != 3]


# -- a sampler is never asked twice --------------------------------------------------------------


def test_a_sampler_that_keeps_asking_for_known_points_is_not_asked_again(workspace):
    # 82 points, 60 experiments: too many to list, so TPE searches; it converges on the peak
    # and would ask for it again and again.
    folder = recipe(workspace, params=f"{X40}, {KIND}", agent="seed = 4\nstartup_trials = 5", budget="experiments = 60")
    agent, summary = run_setup(folder, workspace)
    exps = experiments(db(workspace))
    assert summary.experiments == 60 and [e["status"] for e in exps].count("duplicate") == 0
    points = [(v["x"], v["kind"]) for v in tried(workspace)]
    assert len(points) == len(set(points)) and (3, "a") not in points
    assert agent.asks <= summary.experiments + 2
    assert summary.best == 0  # x = 23, kind b


def test_random_sampling_of_a_finite_space_is_without_replacement(workspace, cli):
    folder = recipe(workspace, params=f"{X40}, {KIND}", agent='sampler = "random"\nseed = 1', budget="experiments = 200")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "every value was measured (82 points)" in result.output
    points = [(v["x"], v["kind"]) for v in tried(workspace)]
    assert len(points) == len(set(points)) == 81


# -- parallel experiments ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, agent", [(X40, ""), (f"{X40}, {KIND}", "seed = 2\nstartup_trials = 4")],
                         ids=["ordered", "tpe"])
def test_parallel_proposals_are_distinct(workspace, params, agent):
    folder = recipe(workspace, params=params, agent=agent, budget="experiments = 30\nparallel = 4")
    agent, summary = run_setup(folder, workspace)
    exps = experiments(db(workspace))
    assert summary.experiments == 30
    assert [e["status"] for e in exps].count("duplicate") == 0
    assert len({e["candidate"] for e in exps}) == 31
    assert agent.asks <= summary.experiments + 2 and not agent.flying


def test_proposals_asked_from_many_threads_at_once_are_all_different(workspace):
    """What the loop does at parallel > 1: several threads in `propose` while none is measured."""
    from overnight.core.contracts import Context
    from overnight.core.recipe import load
    from overnight.core.runner import build
    from overnight.core.store import Store

    for params in (X40, f"{X40}, {KIND}"):
        setup = build(load(recipe(workspace, params=params, agent="seed = 3\nstartup_trials = 2")), Store(db(workspace)))
        agent, surface = setup.agent, setup.surface
        agent.start(surface, [])
        base = surface.read()
        context = Context(best_view=base, best_score=-400.0, baseline_score=-400.0, goal="maximize", rules="", metric="",
                          parameters=surface.parameters(), history=[], ledger=[], failing=[], notes=[],
                          budget_left={"experiments": 30}, seq=1)
        views, lock = [], threading.Lock()

        def ask():
            for _ in range(4):
                p = agent.propose(context)
                with lock:
                    views.append(p.view)

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(views) == 24 and len(set(views)) == 24 and base not in views
        assert len(agent.flying) == 24
        setup.store.close()


# -- people's notes ---------------------------------------------------------------------------------


def test_a_steering_line_that_fixes_or_bounds_a_parameter_is_honoured(workspace, cli):
    params = f'{X40}, {KIND}, {{ key = "y", min = 0, max = 10 }}'
    folder = recipe(workspace, params=params, agent="seed = 5", budget="experiments = 5", start='x = 3\nkind = "a"\ny = 1.5\n')
    assert cli("run", folder, "--yes").exit_code == 0
    steered = cli("steer", "keep kind at b, please")
    assert steered.exit_code == 0 and "search agent" in steered.output
    assert cli("steer", "x between 10 and 20").exit_code == 0
    assert cli("steer", "Let y stay at most 2.5; it costs.").exit_code == 0

    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("experiments = 5", "experiments = 15"))
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    second = rows(db(workspace), "select e.meta, e.agent_trace from experiments e where e.run_id = 2 and e.seq > 0 order by e.seq")
    values = [json.loads(r["meta"])["values"] for r in second]
    assert len(values) == 15
    assert all(v["kind"] == "b" and 10 <= v["x"] <= 20 and 0 <= v["y"] <= 2.5 for v in values), values
    assert "kind is kept at b" in second[0]["agent_trace"] and "x is searched between 10 and 20" in second[0]["agent_trace"]


def test_a_note_that_fixes_every_parameter_leaves_one_point(workspace, cli):
    folder = recipe(workspace, params=X40, budget="experiments = 3", start="x = 3\n")
    assert cli("run", folder, "--yes").exit_code == 0
    # A star's note reaches later runs through the same notes, with the review's words around it.
    assert cli("star", "1:1", "--note", "fix x at 30").exit_code == 0
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert "every value was measured (1 point)" in result.output
    second = rows(db(workspace), "select meta from experiments where run_id = 2 and seq > 0")
    assert [json.loads(r["meta"])["values"] for r in second] == [{"x": 30}]


def test_a_note_given_mid_run_narrows_the_next_proposals(workspace):
    from overnight.core.contracts import Context
    from overnight.core.recipe import load
    from overnight.core.runner import build
    from overnight.core.store import Store

    setup = build(load(recipe(workspace, params=f"{X40}, {KIND}", agent="seed = 8")), Store(db(workspace)))
    agent, surface = setup.agent, setup.surface
    agent.start(surface, [])
    context = Context(best_view=surface.read(), best_score=-405.0, baseline_score=-405.0, goal="maximize", rules="",
                      metric="", parameters=surface.parameters(), history=[], ledger=[], failing=[], notes=[],
                      budget_left={"experiments": 40}, seq=1)
    before = [agent.propose(context).meta["values"] for _ in range(3)]
    context.notes = ["x at most 5", "keep kind at a"]
    after = []
    while (proposal := agent.propose(context)) is not None:
        after.append(proposal.meta["values"])
    # Every point the notes leave (x from 0 to 5, kind a) once, but the baseline and those already in flight.
    left = {(x, "a") for x in range(6)} - {(3, "a")} - {(v["x"], v["kind"]) for v in before}
    assert sorted((v["x"], v["kind"]) for v in after) == sorted(left)
    assert agent.exhausted == "every value was measured (6 points)"
    setup.store.close()


@pytest.mark.parametrize("note, expected", [
    ("keep B3 at 12", {"Inputs!B3": 12}),
    ("Keep b3 at 12.", {"Inputs!B3": 12}),
    ("B3 between 10 and 20", {"Inputs!B3": (10, 20)}),
    ("Inputs!B3 in [10, 20]", {"Inputs!B3": (10, 20)}),
    ("B3 must be at least 15; B4 below 0.3", {"Inputs!B3": (15, 60), "Inputs!B4": (0, 0.29)}),
    ("set the plan to pro", {"plan": "pro"}),
    ("plan: basic or pro, whichever sells", {}),
    ("hold the discount B4 at 20%", {"Inputs!B4": 0.2}),
    ("A reviewer starred experiment 1:4 (Inputs!B3=40, plan=basic): B3 = 25 is better", {"Inputs!B3": 25}),
    ("A reviewer starred experiment 1:4 (Inputs!B3=40, plan=basic): nice", {}),
    ("B3 is fine as it is", {}),
    ("don't keep B3 at 12", {}),
    ("A reviewer rejected experiment 1:4 (Inputs!B3=40, plan=basic): B3 = 40 was too steep", {}),
    ("A reviewer rejected experiment 1:4 (Inputs!B3=40, plan=basic): keep B3 below 30", {"Inputs!B3": (5, 29)}),
    ("keep B3 at 500", {}),  # outside its range: not followed, and said so
])
def test_notes_read_as_bounds(note, expected):
    from overnight.core.contracts import Parameter
    from overnight.plugins import search_notes

    parameters = [Parameter("Inputs!B3", min=5, max=60, integer=True), Parameter("Inputs!B4", min=0, max=0.4, step=0.01),
                  Parameter("plan", choices=("basic", "pro"))]
    narrowed, fixed, told = search_notes.restrict(parameters, search_notes.read([note], parameters))
    declared = {p.name: (p.min, p.max) for p in parameters}
    got = dict(fixed)
    got.update({p.name: (p.min, p.max) for p in narrowed
                if p.name not in fixed and p.choices is None and (p.min, p.max) != declared[p.name]})
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == (value if isinstance(value, str) else pytest.approx(value))
    if note == "keep B3 at 500":
        assert told and "was not followed" in told[0] and "outside" in told[0]


def test_later_notes_win():
    from overnight.core.contracts import Parameter
    from overnight.plugins import search_notes

    p = [Parameter("train.epochs", min=1, max=50, integer=True)]
    bounds = search_notes.read(["keep epochs at 4", "epochs between 10 and 20", "epochs at most 15"], p)
    narrowed, fixed, _ = search_notes.restrict(p, bounds)
    assert not fixed and (narrowed[0].min, narrowed[0].max) == (10, 15)
    assert Counter(search_notes.restrict(p, search_notes.read(["epochs = 7"], p))[1].values()) == Counter([7])
