"""Starting a run: the one place `overnight run`, `overnight run --tui` and the TUI start one.

So a run schedules the same way whichever front end watches it (the same thread
pool), and plugins' `overnight_event` hooks hear every run.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


def start_run(setup, run_id: int | None = None, *, attach: Callable[[Callable[[str], None]], None] | None = None):
    """Runs the loop to its end (a new run, or `run_id` resumed) and returns its summary.

    On the main thread Ctrl-C and SIGTERM stop it cleanly. A front end that runs it in
    a thread of its own (the TUI), where no signal reaches it, passes `attach`: it is
    handed `stop(reason)`, which stops the run cleanly from any thread.
    """
    for observer in observers():
        setup.events.subscribe(observer)
    if attach is None:
        from overnight.core.runner import run

        return run(setup, run_id)
    return asyncio.run(_attached(setup, run_id, attach))


async def _attached(setup, run_id: int | None, attach) -> object:
    # core.runner.run gives no handle on its Loop, and a thread gets no signals: this is
    # runner._run with the stop handed out instead of bound to Ctrl-C.
    from overnight.core.loop import Loop

    loop = Loop(setup, run_id)
    aio = asyncio.get_running_loop()
    aio.set_default_executor(ThreadPoolExecutor(max_workers=pool_size(setup.budget)))

    def stop(reason: str) -> None:
        try:
            aio.call_soon_threadsafe(loop.stop, reason)
        except RuntimeError:
            pass  # the run ended meanwhile: nothing to stop

    attach(stop)
    return await loop.run()


def pool_size(budget) -> int:
    """Experiments wait in threads (on a model, a command); asyncio's default pool would cap `parallel`."""
    return budget.parallel * 2 + 4  # as core.runner sizes it for `overnight run`


def observers() -> list[Callable]:
    """The installed plugins' `overnight_event` hooks, as event subscribers (none: nothing to call)."""
    from overnight.core.plugins import registry

    hook = registry().pm.hook.overnight_event
    return [lambda event: hook(event=event)] if hook.get_hookimpls() else []
