"""Measure an experiment again, without the cache, to see how much its score moves.

The run's setup is rebuilt from the recipe text the run recorded (not the file as
it is now), so the same metric measures the same candidate. This module is
imported only when someone asks for a re-measurement: building a setup may load
heavy plugin libraries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from overnight.core.errors import OvernightError


def remeasure(data, run_id: int, exp_id: int, times: int,
              progress: Callable[[int], None] = lambda done: None) -> tuple[list[float], list[str]]:
    """Returns the scores that came back and the reasons of those that failed; records the scores."""
    from overnight.core.contracts import MeasureRequest
    from overnight.core.measure import sample_now
    from overnight.core.recipe import parse
    from overnight.core.runner import build
    from overnight.core.store import Store

    with data.lock:
        store = data.open()
        run, exp = store.run(run_id), store.experiment(exp_id)
        view = store.candidate(exp["candidate"]) if exp["candidate"] else None
    if view is None:
        raise OvernightError(f"The candidate of experiment {exp['seq']} is missing from the store; it cannot be measured again.")
    recipe = parse(run["recipe_text"], Path(run["recipe_path"]))
    # A connection of its own: the LLM gateway records calls from this thread.
    own = Store(data.path)
    try:
        setup = build(recipe, own, with_agent=False)  # no agent is called: its model's key is not needed
        request = MeasureRequest(setup.budget.per_experiment_seconds, cache=False, llm=setup.llm)
        found = sample_now(setup.executor, view, request, times, each=lambda s: progress(len(s.outcomes)))
    finally:
        own.close()
    samples = found.values
    failures = found.failures + ([found.capped.message.rstrip(".")] if found.capped else [])
    if samples:
        data.write(lambda s: s.add_review(run_id=run_id, experiment_id=exp_id, recipe=run["recipe"],
                                          action="remeasured", note=json.dumps(samples)))
    return samples, failures
