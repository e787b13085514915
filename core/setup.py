"""A run's setup: the recipe's plugins built and prepared, the store, the budget. Made before
the run starts, and without its event loop: `overnight run` starts measuring the baseline from
here (core/ahead.py) while the rest of the run is still being imported."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .budget import Budget, Spend
from .contracts import Agent, Executor, Metric, Surface
from .events import Events
from .executor import LocalExecutor
from .objective import Bounded, Objective, Weighted
from .recipe import Recipe
from .store import Store


@dataclass
class Setup:
    """A run ready to go: built plugins, the store, and where to report."""

    recipe: Any  # core.recipe.Recipe
    surface: Surface
    objective: Objective
    agent: Agent | None  # None when built only to measure (build(with_agent=False))
    budget: Budget
    store: Store
    events: Events = field(default_factory=Events)
    executor: Executor | None = None  # where measurements run: on this machine unless set
    llm: Any = None  # the run's LLM gateway, when a plugin uses a model
    spend: Spend = field(default_factory=Spend)
    ahead: Any = None  # the baseline, when `overnight run` started measuring it early (core/ahead.py)

    def __post_init__(self) -> None:
        if self.executor is None:
            self.executor = LocalExecutor(self.surface, self.objective)
            self.executor.alone = self.budget.parallel == 1
        if self.store is not None:  # a store kept in the recipe folder changes as the run writes it
            self.executor.own_files = self.store.files()


def build(recipe: Recipe, store: Store, events: Events | None = None, *, with_agent: bool = True,
          hosts: Iterable[tuple[str, str]] = ()) -> Setup:
    """Builds and prepares every plugin; user mistakes surface here, before anything is spent.

    `with_agent=False` (check, explain, re-measure) builds a setup that only measures: no
    agent, so its model's key is not required. `hosts`: the (model, api_base) pairs the
    person's trust covered (overnight.ops.trust_gate.build passes them); a key from the
    environment goes to no other api_base."""
    surface: Surface = recipe.surface.build(recipe.dir)
    objective = objective_of(recipe, recipe.dir)
    agent: Agent | None = recipe.agent.build(recipe.dir) if with_agent else None
    setup = Setup(recipe, surface, objective, agent, recipe.budget, store, events or Events())
    plugins = [p for p in (surface, *objective.all_metrics(), agent) if p is not None]
    if any(p.uses_llm for p in plugins):
        from .llm import Gateway

        setup.llm = Gateway(store, recipe.budget, setup.spend)
        setup.llm.trusted_hosts = frozenset(hosts)
        for p in plugins:
            p.llm = setup.llm
    surface.read()  # a missing or unreadable artifact is an error now, not at the baseline
    metric: Metric
    for metric in objective.all_metrics():
        metric.prepare(surface)
    if agent is not None:
        agent.prepare(surface)
    if recipe.executor is not None:  # last: a cluster is reached once the recipe is known sound
        setup.executor = recipe.executor.cls.create(dict(recipe.executor.options), recipe, surface, objective)
    return setup


def objective_of(recipe: Recipe, where: Path) -> Objective:
    """The recipe's metrics and guards, built against the folder `where` (a worker builds its own)."""
    metrics = [Weighted(p.build(where), p.weight, p.label, p.goal) for p in recipe.metrics]
    guards = [Bounded(p.build(where), p.min, p.max, p.label) for p in recipe.guards]
    objective = Objective(metrics, guards)
    repeats = [p.repeats for p in recipe.metrics if p.repeats]
    objective.repeats = max(repeats) if repeats else None
    return objective
