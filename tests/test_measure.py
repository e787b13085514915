"""One way to measure: one rule for how many times, and every caller (the run, check, explain,
re-measure) measures through the executor of its setup, the seam a cluster executor plugs into."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from overnight.core.contracts import Executor, MeasureRequest
from overnight.core.executor import LocalExecutor
from overnight.core.llm import BudgetExceeded
from overnight.core.measure import repeats, sample_now
from overnight.core.recipe import load
from overnight.core.runner import build, start_run
from overnight.core.store import Store
from tests.data.core.kit import experiments, recipe, rows


class Watching(Executor):
    """Measures on this machine like the default executor, and writes down what it was asked;
    with `cap`, the measurement after that many would pass a spend cap."""

    def __init__(self, inner: Executor, cap: int | None = None):
        self.inner, self.cap = inner, cap
        self.asked: list[tuple[str, str, bool, bool]] = []
        self.threads: set[str] = set()

    def measure(self, view, request, guards=True):
        if self.cap is not None and len(self.asked) >= self.cap:
            raise BudgetExceeded("spend cap reached ($0.01)")
        self.asked.append((view, request.split, request.cache, guards))
        self.threads.add(threading.current_thread().name)
        return self.inner.measure(view, request, guards)


def watched(folder: Path, store: Store, **how):
    setup = build(load(folder), store, **how)
    setup.executor = Watching(setup.executor)
    return setup


@pytest.mark.parametrize("deterministic, set_in_recipe, asked, check, expected", [
    (True, None, None, False, 1),  # a deterministic metric: once
    (False, None, None, False, 3),  # a noisy one: three times
    (True, 4, None, False, 4),  # the recipe's repeats win, whatever the metric says of itself
    (False, 7, None, False, 7),
    (True, None, None, True, 2),  # a check wants to see the noise: at least 2 ...
    (False, None, None, True, 5),  # ... and 5 for a noisy metric
    (False, 8, None, True, 8),  # ... or the recipe's repeats when more
    (True, 4, None, True, 4),
    (False, 8, 3, True, 3),  # what the person asked for (check -n) wins over everything
])
def test_the_one_rule_for_how_many_times(deterministic, set_in_recipe, asked, check, expected):
    objective = SimpleNamespace(deterministic=deterministic, repeats=set_in_recipe)
    assert repeats(objective, asked, check=check) == expected


def test_a_run_measures_only_through_the_executor_of_its_setup(workspace):
    folder = recipe(workspace / "r", proposals=["hello, world\n", "hi\n"])
    store = Store(workspace / "o.db")
    setup = watched(folder, store)

    summary = start_run(setup)

    assert (summary.status, summary.kept, summary.experiments) == ("finished", 1, 2)
    assert setup.executor.asked == [
        ("hello\n", "train", True, True),  # the baseline, with its guards
        ("hello, world\n", "train", True, True),  # experiment 1 (a keep)
        ("hi\n", "train", True, True),  # experiment 2
        ("hello\n", "train", False, False),  # the confirmation: baseline and best, fresh, in turns
        ("hello, world\n", "train", False, False),
    ]
    assert "MainThread" not in setup.executor.threads  # measurements wait in worker threads


def test_check_and_explain_measure_through_it_too(workspace):
    from overnight.core.audit import audit
    from overnight.core.explain import explain

    folder = recipe(workspace / "r", proposals=["hello, world\n"])
    store = Store(workspace / "o.db")
    start_run(build(load(folder), store))

    setup = watched(folder, store, with_agent=False)
    report = audit(setup)
    assert report.verdict in ("ready", "risky") and report.measurements == len(setup.executor.asked)
    assert [a[0] for a in setup.executor.asked[:2]] == ["hello\n", "hello\n"]  # a deterministic baseline, twice

    setup = watched(folder, store, with_agent=False)
    result = explain(setup, store, store.run(1))
    assert [r.seq for r in result.rows] == [1]
    assert [a[0] for a in setup.executor.asked] == ["hello, world\n", "hello\n"]  # the best, then without its change


def test_a_spend_cap_keeps_the_samples_so_far_and_says_why_it_stopped(workspace):
    folder = recipe(workspace / "r")
    setup = build(load(folder), Store(workspace / "o.db"), with_agent=False)
    executor = Watching(LocalExecutor(setup.surface, setup.objective), cap=2)

    found = sample_now(executor, "hello, world\n", MeasureRequest(10), 5)

    assert found.values == [13.0, 13.0] and found.failures == []
    assert [cache for _, _, cache, _ in executor.asked] == [True, False]  # only the first may come from a cache
    assert found.capped.reason == "spend cap reached ($0.01)"
    last = found.last.measurement
    assert (last.status, last.reason) == ("crash", "Spend cap reached ($0.01); raise [budget] usd in the recipe to allow more")


def test_until_failure_stops_at_the_first_measurement_that_fails(workspace):
    folder = recipe(workspace / "r")
    setup = build(load(folder), Store(workspace / "o.db"), with_agent=False)

    found = sample_now(setup.executor, "CRASH\n", MeasureRequest(10), 3, until_failure=True)

    assert found.values == [] and len(found.outcomes) == 1
    assert found.failures == ["crash: the command exited with code 3: boom: CRASH requested"]

