"""Many model calls at once within one time limit, for the `dataset` and `judge` metrics.

Threads, because each call waits on the network; the LLM gateway (the metric's
`self.llm`) still caps how many calls are in flight across the whole run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Fanout:
    results: dict[int, Any] = field(default_factory=dict)  # job index -> what it returned
    error: BaseException | None = None  # the first job that raised
    timed_out: bool = False
    late: list = field(default_factory=list)  # the calls of jobs that ended after the deadline (timed out), for the log


GRACE = 2.0  # seconds past the deadline to collect the calls that timed out


def run_all(jobs: list[Callable[[], Any]], concurrency: int, deadline: float) -> Fanout:
    """Runs the jobs, at most `concurrency` at a time; stops at the first error or at `deadline`."""
    # Here, not at the top: `recipes list` imports this module to describe a recipe, and
    # concurrent.futures brings logging with it (a few milliseconds), which only a run uses.
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    out = Fanout()
    if not jobs:
        return out
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs))), thread_name_prefix="overnight-llm")

    def job(i: int) -> None:
        out.results[i] = jobs[i]()

    try:
        futures = [pool.submit(job, i) for i in range(len(jobs))]
        done, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION)
        out.error = next((f.exception() for f in futures if f in done and f.exception() is not None), None)
        if getattr(out.error, "past_deadline", False) and not isinstance(out.error, _silent()):
            # A call the deadline cut just before the wait saw the deadline: the measurement timed out.
            pending = {f for f in futures if f not in done or f.exception() is not None}
            out.error = None
        out.timed_out = out.error is None and bool(pending)
        if out.timed_out:
            # The gateway ends calls in flight at the deadline: wait that moment out, so their
            # calls (prompts sent and billed) reach the log rather than vanish.
            pool.shutdown(wait=False, cancel_futures=True)
            ended, _ = wait(pending, timeout=GRACE)
            out.late = [c for f in ended if not f.cancelled() and f.exception() is not None for c in calls_of(f.exception())]
    finally:
        # Calls already in flight end by their own timeout; none that waits will start.
        pool.shutdown(wait=False, cancel_futures=True)
    out.results = dict(out.results)
    return out


def _silent() -> type:
    from overnight.core.llm import ServerSilent  # a dead server stops the run, even at the deadline

    return ServerSilent


def left(deadline: float) -> float:
    """Seconds a call may still take (at least one: a call with no time at all cannot succeed)."""
    return max(1.0, deadline - time.monotonic())


def calls_of(error: BaseException | None) -> list:
    """The model calls a failed job made before it failed, so the log misses none."""
    if error is None:
        return []
    calls = list(getattr(error, "calls", None) or [])
    call = getattr(error, "call", None)
    return calls + ([call] if call is not None and call not in calls else [])
