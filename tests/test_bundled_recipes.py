"""Every bundled recipe is valid, documented, and runs end to end: offline, or against the loopback LLM server.

Each story copies a bundled recipe the way a person does (`overnight recipes use`
or `overnight run NAME`), sometimes trims the copy's budget so the suite stays
fast, and checks what the store says afterwards.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path

import pytest
import tomlkit

from tests.support.llm_server import prompt_text

KEY = "sk-test-bundled-0123456789"
SCORE_SYSTEM = "You grade a text against a rubric"


def bundled_names() -> list[str]:
    from overnight.sharing.library import bundled

    return [e.name for e in bundled()]


def rows(workspace: Path, sql: str, args=()) -> list[dict]:
    conn = sqlite3.connect(workspace / ".overnight" / "overnight.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def statuses(workspace: Path) -> list[str]:
    return [r["status"] for r in rows(workspace, "select status from experiments order by seq")]


def best_view(workspace: Path) -> str:
    run = rows(workspace, "select best_experiment from runs order by id desc limit 1")[0]
    return rows(workspace, "select c.view from candidates c join experiments e on e.candidate = c.digest where e.id = ?",
                [run["best_experiment"]])[0]["view"]


def copy(cli, workspace: Path, name: str, **sections) -> Path:
    """`overnight recipes use NAME`, then edits of the copy (it is the person's own file now)."""
    result = cli("recipes", "use", name, name)
    assert result.exit_code == 0, result.output
    folder = workspace / name
    toml = folder / "recipe.toml"
    doc = tomlkit.parse(toml.read_text())
    for section, values in sections.items():
        table = doc[section]
        for target in table if isinstance(table, list) else [table]:
            target.update(values)
    toml.write_text(tomlkit.dumps(doc))
    return folder


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def whole(hypothesis: str, text: str) -> str:
    return f"HYPOTHESIS: {hypothesis}\n```\n{text}```\n"


def graded_text(request: dict) -> str | None:
    """The text a judge request grades, or None for a request that is not the judge's."""
    text = prompt_text(request)
    if SCORE_SYSTEM not in text:
        return None
    found = re.search(r"<<<\n(.*?)\n>>>", text, re.S)
    return found.group(1) if found else ""


# -- every bundled recipe ----------------------------------------------------------------


def test_the_library_holds_at_least_eight_recipes(cli):
    listed = json.loads(cli("recipes", "list", "--json").output)
    names = {r["name"] for r in listed if r["origin"] == "bundled"}
    assert {"pricing", "loan", "sim-config", "speedup", "tiny-train", "triage", "cold-email", "subject-lines", "plain-words"} <= names
    assert all(not r["problems"] for r in listed), [r for r in listed if r["problems"]]


@pytest.mark.parametrize("name", bundled_names())
def test_each_bundled_recipe_validates_and_has_a_readme(cli, name):
    from overnight.sharing.library import lookup

    result = cli("recipes", "validate", name)

    assert result.exit_code == 0, result.output
    assert "is a valid recipe" in result.output
    readme = lookup(name).path / "README.md"
    assert readme.exists() and f"overnight run {name}" in readme.read_text()


@pytest.mark.parametrize("name", bundled_names())
def test_show_says_exactly_what_each_bundled_recipe_runs(cli, name):
    from overnight.sharing.library import lookup
    from overnight.core.recipe import load

    result = cli("recipes", "show", name)

    assert result.exit_code == 0, result.output
    recipe = load(lookup(name).path)
    if recipe.runs_code():
        for part in recipe.parts:
            if part.cls.runs_code:
                for line in part.build(recipe.dir).describe_code():
                    assert line in result.output
    else:
        assert "Runs code: no" in result.output


# -- offline ------------------------------------------------------------------------------


def test_loan_finds_a_cheaper_loan_within_the_monthly_limit(cli, workspace):
    copy(cli, workspace, "loan", budget={"experiments": 40})

    result = cli("run", "loan")  # ./loan exists now: the person's copy runs as it is

    assert result.exit_code == 0, result.output
    assert "Copied" not in result.output
    found = statuses(workspace)
    assert found[0] == "baseline" and "keep" in found and "guard_failed" in found
    run = rows(workspace, "select * from runs")[0]
    assert run["best_score"] < 0.6 * run["baseline_score"]  # at least 40% less interest
    # The guard, checked without the workbook: the best term and extra payment fit in 2,000 a month.
    view = best_view(workspace)
    years = float(re.search(r"Inputs!B2 = (\S+)", view).group(1))
    extra = float(re.search(r"Inputs!B3 = (\S+)", view).group(1))
    rate = (0.046 + 0.00065 * years) / 12
    payment = 250000 * rate / (1 - (1 + rate) ** -(years * 12))
    assert payment + extra <= 2000 + 1e-6
    months = -math.log(1 - 250000 * rate / (payment + extra)) / math.log(1 + rate)
    assert (payment + extra) * months - 250000 == pytest.approx(run["best_score"], rel=1e-6)


def test_sim_config_tunes_the_controller_and_keeps_the_overshoot_guard(cli, workspace):
    folder = copy(cli, workspace, "sim-config", budget={"experiments": 14})
    before = (folder / "sim.toml").read_text()

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    found = statuses(workspace)
    assert "keep" in found, found
    run = rows(workspace, "select * from runs")[0]
    assert run["best_score"] < 0.7 * run["baseline_score"]
    assert (folder / "sim.toml").read_text() == before  # nothing of the person's is written by a run
    best = tomlkit.parse(best_view(workspace))
    assert "# integral gain" in best_view(workspace)  # the config's comments survive
    # The guard, checked by running the simulation on the best settings ourselves.
    import subprocess
    import sys

    (workspace / "best.toml").write_text(tomlkit.dumps(best))
    done = subprocess.run([sys.executable, folder / "simulate.py", workspace / "best.toml", "overshoot"],
                          capture_output=True, text=True, check=True)
    assert float(done.stdout.split(":")[1]) <= 0.5


def test_plain_words_takes_its_edits_from_a_script_run_as_a_coding_agent(cli, workspace):
    folder = copy(cli, workspace, "plain-words")
    before = (folder / "notice.txt").read_text()

    result = cli("run", "plain-words", "--yes")

    assert result.exit_code == 0, result.output
    assert "[agent] command: command run for each proposal, in a work folder: {python} editor.py {brief} {file}" in result.output
    exps = rows(workspace, "select seq, status, reason, rationale, score from experiments order by seq")
    assert exps[0]["status"] == "baseline" and exps[0]["score"] == 0
    # The guard refuses the wording that drops "refund"; the script reads that in its next brief.
    refused = [e for e in exps if e["status"] == "guard_failed"]
    assert [e["rationale"] for e in refused] == ["replace 'the remittance of your refund' with 'your money back'"]
    assert "guard facts missing = 1, above its max 0" in refused[0]["reason"]
    assert exps[refused[0]["seq"] + 1]["rationale"] == "replace 'the remittance of your refund' with 'your refund'"
    assert [e["status"] for e in exps].count("keep") == 10 and exps[-1]["score"] == 1.0
    run = rows(workspace, "select * from runs")[0]
    assert run["stop_reason"] == "the agent has no more proposals"
    best = best_view(workspace)
    assert "refund" in best and "Monday" in best and "in order to" not in best.lower()
    assert (folder / "notice.txt").read_text() == before  # nothing of the person's is written by a run


# -- against the loopback LLM server ---------------------------------------------------------

SIEVE = '''"""Prime numbers, counted with a sieve."""


def count_primes(limit: int) -> int:
    """How many prime numbers are smaller than `limit`."""
    if limit < 3:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\\0\\0"
    for n in range(2, int(limit ** 0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit, n)))
    return sum(sieve)
'''

GAMED = '''"""Prime numbers, special-cased for the benchmark."""


def count_primes(limit: int) -> int:
    return 430 if limit == 3000 else limit // 3
'''


def test_speedup_keeps_a_real_speedup_and_its_tests_refuse_a_gamed_one(cli, workspace, key, llm_server):
    answers = iter([whole("answer the benchmark directly", GAMED), whole("a sieve instead of trial division", SIEVE)])
    llm_server.add_rule(None, lambda request: next(answers))
    folder = copy(cli, workspace, "speedup", agent={"api_base": llm_server.url}, budget={"experiments": 2})

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    exps = rows(workspace, "select seq, status, reason, score from experiments order by seq")
    assert [e["status"] for e in exps] == ["baseline", "guard_failed", "keep"], exps
    assert "failing tests" in exps[1]["reason"]
    assert exps[2]["score"] < exps[0]["score"] / 10  # far faster than trial division
    assert "sieve" in best_view(workspace)
    assert "all(n % d" in (folder / "primes.py").read_text()  # the person's file is written only by apply


TUNED = '''"""A wider layer and a learning rate that learns in the time given."""

import time

import numpy as np

HIDDEN = 32
LEARNING_RATE = 0.05
BATCH = 32
SEED = 0


def train(x, y, seconds):
    rng = np.random.default_rng(SEED)
    w1 = rng.normal(0.0, 1.0 / np.sqrt(x.shape[1]), size=(x.shape[1], HIDDEN))
    b1 = np.zeros(HIDDEN)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(HIDDEN), size=(HIDDEN, 1))
    b2 = np.zeros(1)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        batch = rng.integers(0, len(x), size=BATCH)
        xb, yb = x[batch], y[batch]
        hidden = np.tanh(xb @ w1 + b1)
        g_out = 2.0 * (hidden @ w2 + b2 - yb) / BATCH
        g_hidden = (g_out @ w2.T) * (1.0 - hidden ** 2)
        w2 -= LEARNING_RATE * hidden.T @ g_out
        b2 -= LEARNING_RATE * g_out.sum(axis=0)
        w1 -= LEARNING_RATE * xb.T @ g_hidden
        b1 -= LEARNING_RATE * g_hidden.sum(axis=0)

    def predict(inputs):
        return np.tanh(inputs @ w1 + b1) @ w2 + b2

    return predict
'''


def test_tiny_train_keeps_a_better_training_script(cli, workspace, key, llm_server):
    llm_server.add_rule("# The current best version", whole("raise the learning rate; widen the layer", TUNED))
    folder = copy(cli, workspace, "tiny-train", agent={"api_base": llm_server.url}, budget={"experiments": 1},
                  metric={"run": "{python} prepare.py --seconds 1"})

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert statuses(workspace) == ["baseline", "keep"]
    run = rows(workspace, "select * from runs")[0]
    assert run["best_score"] < run["baseline_score"] / 5
    assert "[metric] command: shell command in a work folder: {python} prepare.py --seconds 1" in result.output


def test_subject_lines_keeps_what_the_judge_prefers_within_both_guards(cli, workspace, key, llm_server):
    subjects = iter([
        "FREE soup at spring planting day, Sat 12 April!",
        "Spring planting day is this Saturday 12 April, and also a new tool shed and a tomato workshop",
        "Spring planting day Sat 12 April, and a new tool shed",
    ])

    def judge(request):
        return "Names the planting day and its date.\nSCORE: 9" if "12 April" in graded_text(request) else \
            "Says nothing about what is inside.\nSCORE: 3"

    llm_server.add_rule(lambda request: graded_text(request) is not None, judge)
    llm_server.add_rule(None, lambda request: whole("lead with the planting day", next(subjects) + "\n"))
    folder = copy(cli, workspace, "subject-lines", agent={"api_base": llm_server.url},
                  metric={"api_base": llm_server.url}, budget={"experiments": 3})

    result = cli("run", folder, "--yes")  # runs no code of its own, but sends data to models: trusted for this run

    assert result.exit_code == 0, result.output
    exps = rows(workspace, "select seq, status, reason, score from experiments order by seq")
    assert [e["status"] for e in exps] == ["baseline", "guard_failed", "guard_failed", "keep"], exps
    assert "spam words" in exps[1]["reason"] and "length" in exps[2]["reason"]
    assert exps[0]["score"] == 3 and exps[3]["score"] == 9
    assert best_view(workspace) == "Spring planting day Sat 12 April, and a new tool shed\n"
    judged = rows(workspace, "select count(*) n from llm_calls where role = 'judge'")[0]["n"]
    assert judged >= 3  # three samples per measurement
