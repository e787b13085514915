"""Starting a run: the one place `overnight run`, `overnight run --tui` and the TUI start one.

So a run schedules the same way whichever front end watches it (core.runner sizes
the thread pool and subscribes the plugins' `overnight_event` hooks).
"""

from __future__ import annotations

from typing import Callable, Iterable


def start_run(setup, run_id: int | None = None, *, attach: Callable[[Callable[[str], None]], None] | None = None,
              subscribers: Iterable[Callable] = ()):
    """Runs the loop to its end (a new run, or `run_id` resumed) and returns its summary.

    On the main thread Ctrl-C and SIGTERM stop it cleanly. A front end that runs it in
    a thread of its own (the TUI), where no signal reaches it, passes `attach`: it is
    handed `stop(reason)`, which stops the run cleanly from any thread.
    """
    from overnight.core.runner import start_run as start

    on_start = (lambda running: attach(running.stop)) if attach is not None else None
    return start(setup, run_id=run_id, subscribers=subscribers, on_start=on_start)
