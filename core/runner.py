"""From a recipe to a running loop: build the plugins, prepare them, run, stop cleanly."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import process
from .errors import OvernightError
from .events import Event, Events
from .loop import Loop, Summary
from .recipe import Recipe
from .setup import Setup, build, objective_of  # noqa: F401  (build and objective_of: imported from here too)
from .state import check_baseline, process_gone
from .store import RESUMABLE, Store


def resumable_run(store: Store, recipe: Recipe) -> int:
    """The newest run of `recipe` that can be resumed, claimed for this process before anything
    else is written: of two `--resume` at once, one gets the run and the other says so and stops."""
    named = [r for r in store.runs_overview() if r["recipe"] == recipe.name and r["status"] in RESUMABLE]
    runs = [r for r in named if _started_elsewhere(r, recipe) is None]
    if named and not runs:  # a copy of the recipe (`recipes use`) keeps its name: its runs are not this one's
        folder = _started_elsewhere(named[0], recipe)
        raise OvernightError(f"Run {named[0]['id']} of recipe '{recipe.name}' was started from {folder}, not from "
                             f"{Path(recipe.path).parent}: resume it there (overnight run {shlex.quote(str(folder))} "
                             f"--resume), or start a new run here without --resume.")
    run = next((r for r in runs if _resumable(r)), None)
    if run is None and runs:
        raise OvernightError(_busy(runs[0], recipe.name))
    if run is None:
        raise OvernightError(f"There is no unfinished run of recipe '{recipe.name}' to resume in {store.path}.")
    changed = _scored_differently(store.run(run["id"]), recipe)
    if changed:
        raise OvernightError(f"{' and '.join(changed)} of {recipe.path} changed since run {run['id']} began, so its "
                             f"scores would not compare with those measured now: start a new run without --resume, "
                             f"or put those sections back as they were to resume it.")
    check_baseline(store, run["id"])
    if not store.claim_run(run["id"], run["pid"]):
        raise OvernightError(f"Run {run['id']} of recipe '{recipe.name}' is being resumed by process {store.run(run['id'])['pid']}.")
    return run["id"]


SCORED = ("surface", "metric", "guards")  # what decides a score; the budget and the agent may change between stops


def _started_elsewhere(run: dict, recipe: Recipe) -> Path | None:
    """The folder a run was started from, when it is another recipe folder that is still there (one
    that is gone was moved or renamed, and may be this one)."""
    started = Path(run["recipe_path"] or "")
    try:
        if started.exists() and started.resolve() != Path(recipe.path).resolve():
            return started.parent
    except OSError:
        pass
    return None


def _scored_differently(run: dict, recipe: Recipe) -> list[str]:
    """The sections of recipe.toml that decide a score and differ from those the run began with."""
    import tomllib

    try:
        before, now = tomllib.loads(run["recipe_text"] or ""), tomllib.loads(recipe.text)
    except tomllib.TOMLDecodeError:  # a recorded text edited by hand: nothing to compare with
        return []
    return [f"[{section}]" for section in SCORED if before.get(section) != now.get(section)]


def _resumable(run: dict) -> bool:
    """Stopped, or marked running or paused by a process that is gone (as `status` says: died). Or by
    this very process: its pid, reused after a reboot, cannot be running a run it has not started."""
    return run["status"] == "stopped" or run["pid"] == os.getpid() or process_gone(run)


def _busy(run: dict, recipe: str) -> str:
    if run["status"] == "paused":
        return f"Run {run['id']} of recipe '{recipe}' is paused (process {run['pid']}); continue it with `overnight resume {run['id']}`."
    return (f"Run {run['id']} of recipe '{recipe}' is still running (process {run['pid']}); "
            f"stop it first (overnight stop) or wait for it to end.")


@dataclass
class Running:
    """A run in progress, as `start_run` hands it to `on_start`."""

    loop: Loop
    aio: asyncio.AbstractEventLoop

    def stop(self, reason: str) -> None:
        """Stops the run cleanly (what is in flight is recorded as interrupted); safe from any thread."""
        if not self.aio.is_closed():  # else it has ended already
            self.loop.interrupt(reason)  # the loop's thread may be waiting on a command: it is killed now
            try:
                self.aio.call_soon_threadsafe(self.loop.stop, reason)
            except RuntimeError:  # the interrupt alone ended the run, and its event loop closed meanwhile
                pass


def start_run(recipe: Recipe | Setup, store: Store | None = None, *, run_id: int | None = None,
              subscribers: Iterable[Callable[[Event], object]] = (),
              on_start: Callable[[Running], object] | None = None, plugins=None) -> Summary:
    """Runs a recipe to its end and returns its summary: how every front end starts a run.

    recipe: a loaded `Recipe`, built here with `build` (a user mistake raises OvernightError
        before anything is spent); or a `Setup` that `build` already made, for a front end
        that shows those errors before it opens.
    store: where the run is recorded; needed with a Recipe (a Setup carries its own).
    run_id: an unfinished run to continue (see `resumable_run`); None starts a new run.
    subscribers: called with each event (core/events.py) in the run's thread; so are the
        `overnight_event` hooks of `plugins` (a `core.plugins.Registry`; by default
        `core.plugins.for_run()`: every installed plugin that observes). One that raises is
        reported as a warning, never fatal.
    on_start: called once with a `Running` handle as the loop starts, for a front end that
        must stop the run from another thread (the run's id comes with the RunStarted event).

    Blocks until the run ends: a UI calls it from a worker thread. From the main thread,
    Ctrl-C and SIGTERM stop the run cleanly, and --resume continues it.
    """
    if not isinstance(recipe, Setup) and store is None:
        raise ValueError("start_run needs the store a recipe's run is recorded in")
    setup = recipe if isinstance(recipe, Setup) else build(recipe, store)
    if setup.agent is None:
        raise ValueError("a setup built with_agent=False only measures; it cannot run")
    for fn in subscribers:
        setup.events.subscribe(fn)
    subscribe_plugins(setup.events, plugins)
    try:
        return asyncio.run(_run(setup, run_id, on_start))
    finally:
        process.allow()  # a stop holds for the run it stopped: a re-measure after it runs its commands


def subscribe_plugins(events: Events, plugins=None) -> None:
    """Subscribes each plugin's `overnight_event` hook on its own, so one that raises is named
    and the others still hear of the event. Once per Events, however often it is called."""
    if events.plugins_subscribed:
        return
    from .plugins import for_run

    events.plugins_subscribed = True
    for impl in (plugins or for_run()).pm.hook.overnight_event.get_hookimpls():
        events.subscribe(lambda event, fn=impl.function, args=tuple(impl.argnames): fn(**{a: event for a in args}),
                         name=f"the plugin '{impl.plugin_name}'")


def pool_size(budget) -> int:
    """Experiments wait in threads (on a model, a command); asyncio's default pool has only
    cpu_count + 4 of them, which would cap `parallel` on a small machine."""
    return budget.parallel * 2 + 4


def run(setup: Setup, run_id: int | None = None) -> Summary:
    """`start_run` of a Setup already built (tests and benchmarks use it)."""
    return start_run(setup, run_id=run_id)


async def _run(setup: Setup, run_id: int | None, on_start: Callable[[Running], object] | None = None) -> Summary:
    loop = Loop(setup, run_id)
    aio = asyncio.get_running_loop()
    aio.set_default_executor(ThreadPoolExecutor(max_workers=pool_size(setup.budget)))
    for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
        try:
            aio.add_signal_handler(sig, loop.stop, f"interrupted by {name}")
            # asyncio calls `stop` once the loop looks again; the loop's thread may be waiting on a
            # command meanwhile (core/measure.py), so the handler itself kills it at once.
            signal.signal(sig, lambda *_, reason=f"interrupted by {name}": loop.interrupt(reason))
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (a UI runs the loop in a worker)
    if setup.ahead is not None and setup.ahead.stopped:  # a signal came before the loop listened (core/ahead.py)
        loop.interrupt(setup.ahead.stopped)
    if on_start is not None:
        on_start(Running(loop, aio))
    try:
        return await loop.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                aio.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
