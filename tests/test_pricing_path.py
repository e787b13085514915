"""The bundled pricing recipe's path through a run: the cell metric, its guard and the search
agent work in the loop's own thread (no hand-off to a worker for in-process work that never
waits), and the compiled model computes each point once, the run's confirmation included."""

from __future__ import annotations

import threading
from pathlib import Path

from overnight.core.recipe import load
from overnight.core.runner import build, run
from overnight.core.store import Store
from overnight.plugins.cell import CellMetric
from overnight.plugins.search import SearchAgent
from tests.support.bundled import bundled_copy


def pricing(root: Path, experiments: int) -> Path:
    return bundled_copy(root, "pricing", experiments)


def test_the_cell_metric_its_guard_and_the_search_agent_work_in_the_loop_thread(workspace, monkeypatch):
    threads: dict[str, set[str]] = {"measure": set(), "propose": set()}
    measure, propose = CellMetric.measure, SearchAgent.propose
    monkeypatch.setattr(CellMetric, "measure", lambda self, *a: threads["measure"].add(threading.current_thread().name)
                        or measure(self, *a))
    monkeypatch.setattr(SearchAgent, "propose", lambda self, c: threads["propose"].add(threading.current_thread().name)
                        or propose(self, c))
    store = Store(workspace / "o.db")
    summary = run(build(load(pricing(workspace, 12)), store))
    store.close()
    assert summary.experiments == 12 and summary.best > summary.baseline
    assert threads == {"measure": {threading.current_thread().name}, "propose": {threading.current_thread().name}}


def test_each_point_is_computed_once_the_confirmation_included(workspace):
    """The baseline and 70 proposals: 71 evaluations for the metric and its guard together; confirming
    the baseline (70 points back) and the best at the end finds both remembered (the model is deterministic)."""
    store = Store(workspace / "o.db")
    setup = build(load(pricing(workspace, 70)), store)
    models = {id(m.model): m.model for m in setup.objective.all_metrics()}
    assert len(models) == 1  # one model for the metric and the guard
    summary = run(setup)
    run_row = store.run(summary.run_id)
    store.close()
    assert summary.experiments == 70 and summary.best > summary.baseline
    assert run_row["confirmed_baseline"] == summary.baseline and run_row["confirmed_best"] == summary.best
    assert next(iter(models.values())).evaluations == 71


def test_a_workbook_whose_evaluation_is_slow_is_measured_in_a_worker_thread_from_then_on(workspace, monkeypatch):
    """Instant holds while evaluations are quick: once one takes longer than the metric allows itself,
    the rest are measured in a worker thread, where a stop need not wait for them."""
    import overnight.plugins.cell as cell

    threads: list[str] = []
    measure = CellMetric.measure
    monkeypatch.setattr(CellMetric, "measure", lambda self, *a: threads.append(threading.current_thread().name)
                        or measure(self, *a))
    monkeypatch.setattr(cell, "INSTANT_MOST", 0.0)  # every evaluation counts as slow
    store = Store(workspace / "o.db")
    setup = build(load(pricing(workspace, 4)), store)
    assert setup.executor.inline
    summary = run(setup)
    store.close()
    assert summary.experiments == 4
    assert not setup.executor.inline
    here = threading.current_thread().name
    assert threads[0] == here and all(name != here for name in threads[2:])
