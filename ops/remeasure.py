"""Measuring an experiment again, without the cache, to see how much its score moves.

The run's setup is rebuilt from the recipe text the run recorded (not the file as
it is now), so the same metric measures the same candidate; the agent is not
built, since no proposal is asked for (its model's key is not needed).
Building a setup may load heavy plugin libraries: callers import this module
only when someone asks for a re-measurement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from overnight.core.errors import OvernightError

from .find import recipe_of
from .trust_gate import build


def remeasure(db: Path, run_id: int, exp_id: int, times: int,
              progress: Callable[[int], None] = lambda done: None) -> tuple[list[float], list[str]]:
    """Returns the scores that came back and the reasons of those that failed; records the scores."""
    from overnight.core.store import Store

    # A connection of its own: the LLM gateway records calls from this thread.
    store = Store(db)
    try:
        run, exp = store.run(run_id), store.experiment(exp_id)
        view = store.candidate(exp["candidate"]) if exp["candidate"] else None
        if view is None:
            raise OvernightError(f"The candidate of experiment {exp['seq']} is missing from the store; it cannot be measured again.")
        recipe = recipe_of(run)
        setup = build(recipe, store, with_agent=False, ask=False)
        samples, failures = measure_times(setup, view, times, progress)
        if samples:
            store.add_remeasure(run_id=run_id, experiment_id=exp_id, recipe=run["recipe"], samples=samples)
    finally:
        store.close()
    return samples, failures


def measure_times(setup, view: str, times: int, progress: Callable[[int], None]) -> tuple[list[float], list[str]]:
    """`view` measured `times` times afresh through the run's executor: (values, reasons of the failures)."""
    from overnight.core.contracts import MeasureRequest
    from overnight.core.measure import sample_now

    request = MeasureRequest(setup.budget.per_experiment_seconds, cache=False)
    found = sample_now(setup.executor, view, request, times, each=lambda s: progress(len(s.outcomes)))
    return found.values, found.failures + ([found.capped.message.rstrip(".")] if found.capped else [])
