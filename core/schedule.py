"""Scheduling: keeps `parallel` experiments in flight until there is a reason to stop.

Between experiments it obeys the pause and stop requests that the TUI or another
terminal leave in the store.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from . import process
from .budget import Budget
from .numbers import fmt, gain
from .state import RunState

STOPPED_ON_REQUEST = "stopped on request"
PAUSE_POLL = 0.5  # seconds between looks at the store while paused


class Scheduler:
    def __init__(self, store, budget: Budget, goal: str):
        self.store, self.budget, self.goal = store, budget, goal
        self.run_id: int | None = None
        self.state: RunState | None = None
        self.stopping: str | None = None  # why no new experiment starts
        self.interrupted = False  # set by stop(): Ctrl-C, SIGTERM, or the TUI
        self.tasks: set[asyncio.Task] = set()
        self.settle: Callable[[], None] = lambda: None  # writes what the run left for later, before it waits

    @property
    def stopped_early(self) -> bool:
        """Stopped before the run ran its course, so it can be resumed."""
        return self.interrupted or self.stopping == STOPPED_ON_REQUEST

    def finish(self, reason: str) -> None:
        """No new experiment starts; those in flight end normally."""
        self.stopping = self.stopping or reason

    def stop(self, reason: str) -> None:
        """No new experiment starts; those in flight are cancelled (and recorded as interrupted)."""
        self.interrupt(reason)
        for task in list(self.tasks):
            task.cancel()

    def interrupt(self, reason: str) -> None:
        """No new experiment starts, and every command is killed: plain assignments and kills, safe
        in a signal handler that runs while the loop's thread waits on a command."""
        self.stopping = reason
        self.interrupted = True
        process.kill_all()

    async def run(self, experiment: Callable[[], Awaitable[None]], run_id: int, state: RunState) -> None:
        """Runs `experiment()` again and again, `parallel` at a time, until a reason to stop."""
        self.run_id, self.state = run_id, state
        while True:
            self._fill(experiment)
            if not self.tasks:
                return
            done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                self.tasks.discard(task)
                if not task.cancelled() and task.exception():
                    for other in self.tasks:
                        other.cancel()
                    raise task.exception()
            await self._obey_controls()

    def _fill(self, experiment: Callable[[], Awaitable[None]]) -> None:
        while not self.stopping and len(self.tasks) < self.budget.parallel:
            self.stopping = self._why_stop()
            if self.stopping:
                return
            self.tasks.add(asyncio.create_task(experiment()))

    def _why_stop(self) -> str | None:
        reason = self.state.spend.exhausted(self.budget, in_flight=len(self.tasks))
        if reason:
            return reason
        target, best = self.budget.target, self.state.best
        if target is not None and best and gain(best.score, target, self.goal) >= 0:
            return f"target reached ({fmt(target)})"
        return None

    async def _obey_controls(self) -> None:
        control = self.store.control(self.run_id)
        if control == "pause":
            self.settle()
        while control == "pause" and not self.stopping:
            self.store.update_run(self.run_id, status="paused")
            await asyncio.sleep(PAUSE_POLL)
            control = self.store.control(self.run_id)
            if control != "pause":
                self.store.update_run(self.run_id, status="running")
        if control == "stop" and not self.stopping:
            self.stopping = STOPPED_ON_REQUEST
