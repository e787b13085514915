"""The loop's rules: noise first, the keep rule, guards, duplicates, parallel experiments,
budgets, and what the agent is told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overnight.core.budget import Budget, Spend
from overnight.core.plugins import Registry
from overnight.core.recipe import load
from overnight.core.runner import build, run
from overnight.core.store import Store
from tests.data.core.kit import NOISY, experiments, recipe, rows



def db_of(workspace: Path) -> Path:
    return workspace / ".overnight" / "overnight.db"


def run_ok(cli, folder: Path, *args):
    result = cli("run", folder, "--yes", *args)
    assert result.exit_code == 0, result.output
    return result


def by_seq(workspace: Path) -> dict[int, dict]:
    return {e["seq"]: e for e in experiments(db_of(workspace))}


def the_run(workspace: Path) -> dict:
    return rows(db_of(workspace), "select * from runs order by id desc limit 1")[0]


# -- noise first ---------------------------------------------------------------------------


def test_noise_floor_from_repeats_and_a_confirmation_that_disagrees(workspace, cli):
    folder = recipe(
        workspace / "noisy", text="10 11 9 10 10\n",
        metric='kind = "python"\nfile = "noisy.py"\ndeterministic = false\nrepeats = 5\nk = 2',
        proposals=["11\n", "20 9\n", "15 15.5\n", "16\n"],
        files={"noisy.py": NOISY},
    )
    run_ok(cli, folder)
    exps = by_seq(workspace)

    base = exps[0]
    assert base["status"] == "baseline"
    assert json.loads(base["samples"]) == [10, 11, 9, 10, 10]
    noise = 0.5 ** 0.5  # the sample standard deviation of those five
    assert base["reason"] == "measured 5 times; noise 0.7071"
    assert the_run(workspace)["noise"] == pytest.approx(noise)

    # Better by 1, but the bar is k * noise = 1.414: not a keep.
    assert exps[1]["status"] == "discard"
    assert "not more than the bar of 1.4142" in exps[1]["reason"]
    # Looks like a win (20), but the confirming re-measurement says 9: a discard, saying why.
    assert exps[2]["status"] == "discard"
    assert "the confirming re-measurement did not agree (20, 9)" in exps[2]["reason"]
    assert json.loads(exps[2]["samples"]) == [20, 9]
    # Confirmed: kept with the mean of both measurements.
    assert exps[3]["status"] == "keep"
    assert exps[3]["score"] == pytest.approx(15.25) and json.loads(exps[3]["samples"]) == [15, 15.5]
    # 16 against the new best 15.25: within the bar.
    assert exps[4]["status"] == "discard" and "best (15.25)" in exps[4]["reason"]

    calls = (folder / "calls.log").read_text().splitlines()
    assert calls.count("10 11 9 10 10") >= 5
    assert calls.count("11") == 1 and calls.count("20 9") == 2 and calls.count("16") == 1


def test_min_delta_sets_the_bar_for_a_deterministic_metric(workspace, cli):
    folder = recipe(
        workspace / "r", metric='kind = "command"\nrun = "wc -c < {file}"\nmin_delta = 5',
        proposals=["hello!\n", "hello, world!\n", "hello, world!!\n"],
    )
    run_ok(cli, folder)
    exps = by_seq(workspace)
    assert exps[0]["reason"] == "measured 1 time; noise 0"
    assert exps[1]["status"] == "discard" and "not more than the bar of 5" in exps[1]["reason"]
    assert exps[2]["status"] == "keep" and "more than the bar of 5" in exps[2]["reason"]
    assert exps[3]["status"] == "discard"


def test_k_times_the_noise_is_the_bar_when_it_is_larger(workspace, cli):
    folder = recipe(
        workspace / "r", text="10 12\n",
        metric='kind = "python"\nfile = "noisy.py"\ndeterministic = false\nrepeats = 2',
        budget="k = 3\nmin_delta = 0.5", proposals=["15 15\n", "16.5 16.5\n"], files={"noisy.py": NOISY},
    )
    run_ok(cli, folder)
    exps = by_seq(workspace)
    # noise = stdev(10, 12) = 1.414; bar = max(0.5, 3 * 1.414) = 4.243 above the mean 11
    assert exps[1]["status"] == "discard" and "not more than the bar of 4.2426" in exps[1]["reason"]
    assert exps[2]["status"] == "keep"


def test_minimize_and_simplicity_breaks_ties(workspace, cli):
    folder = recipe(
        workspace / "r", text="a!b!c\n",
        metric='kind = "command"\nrun = "grep -o ! {file} | wc -l"\ngoal = "minimize"',
        proposals=["a!b!c!\n", "!!\n", "a!\n"],
    )
    run_ok(cli, folder)
    exps = by_seq(workspace)
    assert exps[1]["status"] == "discard" and "worse than the best (2) by 1" in exps[1]["reason"]
    assert exps[2]["status"] == "keep" and "simplicity wins ties" in exps[2]["reason"]
    assert exps[3]["status"] == "keep" and exps[3]["score"] == 1


# -- guards ----------------------------------------------------------------------------------


def test_guards_with_a_command_and_a_python_metric(workspace, cli):
    guards = '''
[[guards]]
kind = "command"
run = "wc -l < {file}"
max = 1
label = "lines"

[[guards]]
kind = "python"
file = "words.py"
min = 1
'''
    folder = recipe(
        workspace / "r", guards=guards,
        proposals=["hello world\n", "hello\nworld, two lines\n", "                        \n", "hello world!\n"],
        files={"words.py": "def score(path):\n    return len(open(path).read().split())\n"},
    )
    run_ok(cli, folder)
    exps = by_seq(workspace)
    assert exps[1]["status"] == "keep"
    assert exps[2]["status"] == "guard_failed" and exps[2]["reason"] == "guard lines = 2, above its max 1"
    assert exps[3]["status"] == "guard_failed" and exps[3]["reason"] == "guard python = 0, below its min 1"
    assert exps[4]["status"] == "keep" and "best (12)" in exps[4]["reason"]
    assert the_run(workspace)["best_score"] == 13


def test_a_python_metric_with_every_example_of_a_large_dataset(workspace, cli):
    """A function returning 12,000 examples (over a megabyte of JSON) and printing more than
    the output kept: its result arrives whole, since it does not travel through the output."""
    score = (
        "def score(path):\n"
        "    print('x' * 3_000_000)\n"
        "    words = len(open(path).read().split())\n"
        "    rows = [{'id': f'row-{i}', 'input': 'a question of some length ' * 3, 'score': words}\n"
        "            for i in range(12_000)]\n"
        "    return {'score': words, 'examples': rows}\n"
    )
    folder = recipe(workspace / "r", metric='kind = "python"\nfile = "score.py"', proposals=["hello world\n"],
                    files={"score.py": score})
    run_ok(cli, folder)
    exps = by_seq(workspace)
    assert exps[1]["status"] == "keep" and exps[1]["score"] == 2
    assert rows(workspace / ".overnight" / "overnight.db",
                "select count(*) as n from example_results where experiment_id = ?", [exps[1]["id"]]) == [{"n": 12_000}]


# -- parallel --------------------------------------------------------------------------------


SLOW = '''
echo "start $(date +%s.%N) $PWD" >> "$OVERNIGHT_RECIPE_DIR/times.log"
sleep 0.6
echo "end $(date +%s.%N) $PWD" >> "$OVERNIGHT_RECIPE_DIR/times.log"
wc -c < "$1"
'''


def test_parallel_experiments_overlap_each_in_its_own_folder(workspace, cli):
    proposals = [("x" * n) + "\n" for n in range(10, 18)]
    folder = recipe(
        workspace / "r", metric='kind = "command"\nrun = "sh {recipe}/slow.sh {file}"',
        budget="parallel = 4", proposals=proposals, files={"slow.sh": SLOW},
    )
    run_ok(cli, folder)
    exps = by_seq(workspace)
    assert sorted(exps) == list(range(0, 9))
    assert all(e["status"] in ("keep", "discard") for s, e in exps.items() if s)
    assert the_run(workspace)["best_score"] == 18

    starts, ends, folders = {}, {}, []
    for line in (folder / "times.log").read_text().splitlines():
        what, at, where = line.split(" ", 2)
        (starts if what == "start" else ends).setdefault(where, []).append(float(at))
        if what == "start":
            folders.append(where)
    experiments_only = [f for f in folders if len(starts[f]) == 1]
    # Every measurement had a work folder of its own, none of them the recipe's.
    assert len(set(folders)) == len(folders)
    assert str(folder) not in folders
    # Four at once: some measurement started while three others were still running.
    intervals = [(starts[f][0], ends[f][0]) for f in experiments_only]
    most = max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)
    assert most == 4


# -- budgets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [1, 2])
def test_experiment_budget(workspace, cli, parallel):
    folder = recipe(workspace / "r", budget=f"experiments = 3\nparallel = {parallel}",
                    proposals=[f"{'y' * n}\n" for n in range(1, 7)])
    run_ok(cli, folder)
    assert len(by_seq(workspace)) == 1 + 3
    run = the_run(workspace)
    assert run["stop_reason"] == "experiment budget reached (3)" and run["experiments"] == 3


def test_time_budget(workspace, cli):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "sleep 0.2; wc -c < {file}"',
                    budget="minutes = 0.01", proposals=[f"{'y' * n}\n" for n in range(1, 30)])
    run_ok(cli, folder)
    run = the_run(workspace)
    assert run["stop_reason"] == "time budget reached (0.01 min)"
    assert 1 <= run["experiments"] < 29


def test_patience(workspace, cli):
    folder = recipe(workspace / "r", budget="patience = 2", proposals=["hello world\n", "a\n", "b\n", "c\n", "d\n"])
    run_ok(cli, folder)
    assert [e["status"] for e in by_seq(workspace).values()] == ["baseline", "keep", "discard", "discard"]
    assert the_run(workspace)["stop_reason"] == "no keep in 2 experiments (patience)"


def test_target(workspace, cli):
    folder = recipe(workspace / "r", budget="target = 12", proposals=["hi!\n", "hello world\n", "hello world!!\n"])
    run_ok(cli, folder)
    assert len(by_seq(workspace)) == 3
    assert the_run(workspace)["stop_reason"] == "target reached (12)"


def test_max_failures_in_a_row(workspace, cli):
    proposals = ["CRASH 1\n", {"replace": ["absent", "x"]}, "CRASH 2\n", "hello world\n"]
    folder = recipe(workspace / "r", budget="max_failures = 3", proposals=proposals)
    run_ok(cli, folder)
    assert [e["status"] for e in by_seq(workspace).values()] == ["baseline", "crash", "invalid", "crash"]
    assert the_run(workspace)["stop_reason"] == "3 failures in a row (max_failures)"


def test_a_success_resets_the_failure_streak(workspace, cli):
    proposals = ["CRASH 1\n", "CRASH 2\n", "a\n", "CRASH 3\n", "CRASH 4\n", "hello world\n"]
    folder = recipe(workspace / "r", budget="max_failures = 3", proposals=proposals)
    run_ok(cli, folder)
    assert by_seq(workspace)[6]["status"] == "keep"


def test_spend_caps():
    assert Spend(usd=1.0).exhausted(Budget(usd=1.0)) == "spend cap reached ($1)"
    assert Spend(usd=0.5).exhausted(Budget(usd=1.0)) is None
    assert Spend(tokens=100).exhausted(Budget(tokens=100)) == "token cap reached (100)"
    assert Spend(tokens=99).exhausted(Budget(tokens=100)) is None
    assert Spend(experiments=4).exhausted(Budget(experiments=5), in_flight=1) == "experiment budget reached (5)"
    assert Spend(since_keep=3).exhausted(Budget(patience=3)) == "no keep in 3 experiments (patience)"
    assert Spend(failures_in_a_row=10).exhausted(Budget()) == "10 failures in a row (max_failures)"
    spent = Spend(seconds_before=120.0)
    assert spent.exhausted(Budget(minutes=2)) == "time budget reached (2 min)"
    left = Spend(experiments=3, usd=0.25, tokens=10).left(Budget(experiments=5, usd=1.0, tokens=50))
    assert left["experiments"] == 2 and left["usd"] == 0.75 and left["tokens"] == 40


# -- what the agent is told -------------------------------------------------------------------


def probe_recipe(folder: Path, proposals: list[str], budget: str = "experiments = 10") -> Path:
    recipe(folder, proposals=[], budget=budget, agent='kind = "probe"\nfile = "views.jsonl"\nlog = "contexts.jsonl"',
           files={"views.jsonl": "".join(json.dumps({"view": v, "rationale": f"idea {i}"}) + "\n"
                                         for i, v in enumerate(proposals, 1))})
    return folder


def test_the_agent_sees_the_ledger_and_the_crash_log_tail(workspace):
    registry = Registry().load(modules=["tests.data.core.probe"])
    folder = probe_recipe(workspace / "r", ["CRASH\n", "hi\n", "hello world\n", "hi\n"])
    store = Store(workspace / "probe.db")
    summary = run(build(load(folder, registry), store))
    assert summary.counts == {"baseline": 1, "crash": 1, "discard": 1, "keep": 1, "duplicate": 1}

    contexts = [json.loads(x) for x in (folder / "contexts.jsonl").read_text().splitlines()]
    first, fourth = contexts[0], contexts[3]
    assert first["history"] == [] and first["ledger"] == [] and first["best_view"] == "hello\n"
    assert first["budget_left"]["experiments"] == 10
    assert "the number printed by" in first["metric"] and first["rules"] == "Return the whole new file."

    assert fourth["seq"] == 4 and fourth["best_view"] == "hello world\n" and fourth["best_score"] == 12
    assert [a["status"] for a in fourth["history"]] == ["crash", "discard", "keep"]
    crash = fourth["history"][0]
    assert "boom: CRASH requested" in crash["trace"] and "about to fail" in crash["trace"]
    # The ledger: what was tried and rejected, so it is not paid for twice; a keep is not in it.
    assert [(a["seq"], a["status"], a["rationale"]) for a in fourth["ledger"]] == [(1, "crash", "idea 1"), (2, "discard", "idea 2")]
    assert fourth["budget_left"]["experiments"] == 7
    store.close()


def test_an_in_process_metric_and_agent_from_a_test_plugin(workspace):
    registry = Registry().load(modules=["tests.data.core.probe"], entry_points=True)
    folder = probe_recipe(workspace / "r", ["hello there\n"])
    text = (folder / "recipe.toml").read_text().replace('kind = "command"\nrun = "sh {recipe}/score.sh {file}"', 'kind = "length"')
    (folder / "recipe.toml").write_text(text)
    store = Store(workspace / "probe.db")
    summary = run(build(load(folder, registry), store))
    assert (summary.baseline, summary.best, summary.kept) == (6, 12, 1)
    assert registry.owner[("agent", "probe")] == "tests.data.core.probe"
    store.close()


def test_a_bug_in_the_agent_is_an_invalid_experiment_and_the_run_goes_on(workspace):
    registry = Registry().load(modules=["tests.data.core.probe"])
    folder = recipe(workspace / "r", agent='kind = "probe"\nfile = "views.jsonl"\nlog = "contexts.jsonl"',
                    files={"views.jsonl": '{"raise": "an agent bug"}\n{"view": "hello world\\n"}\n'})
    store = Store(workspace / "probe.db")
    summary = run(build(load(folder, registry), store))
    assert summary.status == "finished" and summary.counts == {"baseline": 1, "invalid": 1, "keep": 1}
    bad = store.experiment_at(summary.run_id, 1)
    assert bad["reason"] == "the agent's proposal could not be used: the agent failed: ValueError: an agent bug"
    assert "Traceback" in bad["agent_trace"] and "raise ValueError" in bad["agent_trace"]
    store.close()


# -- resuming in-process -------------------------------------------------------------------------


def test_resume_restores_best_noise_spend_and_the_seen_candidates(workspace, cli):
    folder = recipe(
        workspace / "noisy", text="10 11 9 10 10\n",
        metric='kind = "python"\nfile = "noisy.py"\ndeterministic = false\nrepeats = 5',
        proposals=["15 15.5\n", "11\n", "12\n", "15 15.5\n", "30 30\n", "13\n"],
        budget="experiments = 3", files={"noisy.py": NOISY},
    )
    run_ok(cli, folder)
    db = db_of(workspace)
    # As if the first session had been killed: the run still says it is running.
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("update runs set status = 'running', pid = 0")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("experiments = 3", "experiments = 5"))
    calls_before = len((folder / "calls.log").read_text().splitlines())

    resumed = cli("run", folder, "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    exps = by_seq(workspace)
    assert len(rows(db, "select * from runs")) == 1
    assert [e["status"] for e in exps.values()] == ["baseline", "keep", "discard", "discard", "duplicate", "keep"]
    # The baseline was not measured again before the new experiments: the noise and best came back.
    assert exps[4]["reason"] == "same candidate as experiment 1; not measured again"
    assert "beats the best (15.25)" in exps[5]["reason"]
    run_row = the_run(workspace)
    assert run_row["experiments"] == 5 and run_row["stop_reason"] == "experiment budget reached (5)"
    assert run_row["noise"] == pytest.approx(0.5 ** 0.5)
    # The resumed session measured the new proposal first: no second baseline, no repeat.
    new_calls = (folder / "calls.log").read_text().splitlines()[calls_before:]
    assert new_calls[:2] == ["30 30", "30 30"]


def test_resume_without_an_unfinished_run_says_so(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    result = cli("run", folder, "--yes", "--resume")
    assert result.exit_code != 0
    assert "There is no unfinished run of recipe 'r' to resume" in result.output
    run_ok(cli, folder)
    again = cli("run", folder, "--yes", "--resume")
    assert again.exit_code != 0 and "no unfinished run" in again.output


def test_the_ledger_keeps_every_idea_and_only_the_recent_ones_logs():
    """An agent reads the logs and failing examples of the last HISTORY experiments; older ones
    stay in the ledger as idea and outcome, without their logs: memory stays flat on long nights."""
    from overnight.core.budget import Spend
    from overnight.core.contracts import Attempt, ExampleResult
    from overnight.core.state import HISTORY, RunState

    state = RunState(Spend())
    failing = [ExampleResult("e1", "in", "out", "exp", 0.0)]
    for seq in range(1, 61):
        state.count(Attempt(seq, "crash", "boom", f"idea {seq}", None, None, failing=failing, trace="log " * 1000), None)
    assert [a.rationale for a in state.ledger] == [f"idea {seq}" for seq in range(1, 61)]
    assert all(a.trace and a.failing for a in state.history) and len(state.history) == HISTORY
    assert not any(a.trace or a.failing for a in state.ledger[:-HISTORY])


@pytest.mark.parametrize("body, said", [
    ("import atexit, os, sys\n    atexit.register(os.unlink, sys.argv[4])\n    return 1.0",
     "the function failed: no output"),
    ("return 10 ** 400", "the function returned a number too large to measure (10000000000000000000...)"),
    ("return {'score': 1.0, 'examples': [{'id': 'a', 'score': None}]}", "the function's result could not be read ("),
])
def test_a_python_metric_whose_result_cannot_be_read_is_a_crash_in_one_sentence(workspace, cli, body, said):
    folder = recipe(workspace / "r", metric='kind = "python"\nfile = "score.py"', proposals=["hello world\n"],
                    files={"score.py": f"def score(path):\n    {body}\n"})
    result = cli("run", folder, "--yes")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"The baseline could not be measured (crash): {said}" in result.output
