"""From a recipe to a running loop: build the plugins, prepare them, run, stop cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .contracts import Agent, Metric, Surface
from .errors import OvernightError
from .events import Events
from .loop import Loop, Setup, Summary
from .objective import Bounded, Objective, Weighted
from .recipe import Recipe
from .store import RESUMABLE, Store


def build(recipe: Recipe, store: Store, events: Events | None = None, *, agent_needed: bool = True) -> Setup:
    """Builds and prepares every plugin; user mistakes surface here, before anything is spent.

    `agent_needed=False` (overnight check, explain) measures only: the agent is built but not
    prepared, so its model's key is not required."""
    surface: Surface = recipe.surface.build(recipe.dir)
    metrics = [Weighted(p.build(recipe.dir), p.weight, p.label, p.goal) for p in recipe.metrics]
    guards = [Bounded(p.build(recipe.dir), p.min, p.max, p.label) for p in recipe.guards]
    objective = Objective(metrics, guards)
    repeats = [p.repeats for p in recipe.metrics if p.repeats]
    objective.repeats = max(repeats) if repeats else None
    agent: Agent = recipe.agent.build(recipe.dir)
    setup = Setup(recipe, surface, objective, agent, recipe.budget, store, events or Events())
    plugins = [surface, *objective.all_metrics(), agent]
    if any(p.uses_llm for p in plugins):
        from .llm import Gateway

        setup.llm = Gateway(store, recipe.budget, setup.spend)
        for p in plugins:
            p.llm = setup.llm
    surface.read()  # a missing or unreadable artifact is an error now, not at the baseline
    metric: Metric
    for metric in objective.all_metrics():
        metric.prepare(surface)
    if agent_needed:
        agent.prepare(surface)
    return setup


def resumable_run(store: Store, recipe: Recipe) -> int:
    run = store.latest_run(recipe.name)
    if run is None or run["status"] not in RESUMABLE:
        raise OvernightError(f"There is no unfinished run of recipe '{recipe.name}' to resume in {store.path}.")
    if run["status"] == "running" and _alive(run["pid"]):
        raise OvernightError(
            f"Run {run['id']} of recipe '{recipe.name}' is still running (process {run['pid']}); "
            f"stop it first (overnight stop) or wait for it to end."
        )
    return run["id"]


def _alive(pid: int | None) -> bool:
    """True when another live process has this pid (a run killed with SIGKILL left its row 'running')."""
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def run(setup: Setup, run_id: int | None = None) -> Summary:
    """Runs the loop; Ctrl-C and SIGTERM stop it cleanly, recording what was in flight."""
    return asyncio.run(_run(setup, run_id))


async def _run(setup: Setup, run_id: int | None) -> Summary:
    loop = Loop(setup, run_id)
    aio = asyncio.get_running_loop()
    # Experiments wait in threads (on a model, a command); asyncio's default pool has only
    # cpu_count + 4 of them, which would cap `parallel` on a small machine.
    aio.set_default_executor(ThreadPoolExecutor(max_workers=setup.budget.parallel * 2 + 4))
    for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
        try:
            aio.add_signal_handler(sig, loop.stop, f"interrupted by {name}")
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (the TUI runs the loop in a worker)
    try:
        return await loop.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                aio.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
