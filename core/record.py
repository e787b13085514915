"""Recording: each experiment is stored, then the run's best moves, then the others are told.

In that order, so that whatever a subscriber or the agent does when told (raise, say),
the store and the run's best already agree. Neither can stop the run: what they raise
is reported as a warning (core/events.py) and the run goes on.

A keep is written at once. With one experiment in flight, any other experiment (a discard,
say, which moves nothing the run goes on from) is written while the next command runs
(`Recorder.behind`), off the path between two measurements; every other write of the run
writes it first (`flush`), so the store stays the run's experiments in order, less at most
that one, which a kill leaves to be measured again on resume.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .contracts import Agent, Attempt, ExampleResult, LLMCall, Measurement, Surface
from .linediff import line_diff
from .numbers import mean
from .process import Later
from .faults import point
from .events import Events, ExperimentFinished, NewBest, Used
from .state import Best, RunState, failing

TRACE_TAIL = 4000  # characters of a trace kept for the agent
DIFF_LIMIT = 1_000_000  # characters a diff compares past which it is one summary line
DIFF_INLINE = 10_000  # characters of old and new text up to which a diff is made without a thread


def bounded_diff(surface, old: str, new: str, limit: int = DIFF_LIMIT) -> str:
    """The surface's diff, or past `limit` a line that says why not: a line diff of two long
    texts can take minutes, longer than the experiment's own time limit. For a surface with
    the line diff (core/linediff.py), only the stretches it compares count: a few changes to a
    long file have their diff."""
    if surface is not None and getattr(type(surface), "diff", None) is Surface.diff:
        shown = line_diff(old, new, surface.source().name, limit=limit)
    else:
        shown = surface.diff(old, new) if len(old) + len(new) <= limit else None
    if shown is not None:
        return shown
    return (f"(no diff: {len(old):,} and {len(new):,} characters, past the limit of {limit:,}; "
            f"{'identical' if old == new else 'they differ'})\n")


async def diff_of(surface, old: str, new: str) -> str | Later:
    """`bounded_diff`, in a thread when the texts are long, so other experiments' decisions do not
    wait for it. When short, work for later (a thread hop would cost more than the diff): the diff
    is needed only for the record, so the thread of the experiment's command makes it while the
    command runs (core/process.py `meanwhile`), or the record does."""
    if len(old) + len(new) <= DIFF_INLINE:
        return Later(bounded_diff, surface, old, new)
    return await asyncio.to_thread(bounded_diff, surface, old, new)


@dataclass
class ExperimentRecord:
    """One experiment as the store keeps it, filled in as it goes and stored once."""

    seq: int
    rationale: str = ""
    started_at: float = field(default_factory=time.time)
    parent: int | None = None
    agent_trace: str | None = None
    meta: dict[str, Any] | None = None
    candidate: str | None = None
    diff: str | Later | None = None  # a Later until stored
    status: str = ""
    reason: str = ""
    score: float | None = None
    samples: list[float] | None = None
    components: dict[str, float] | None = None
    delta: float | None = None
    trace: str | None = None
    error: str | None = None
    cost_usd: float = 0.0
    tokens: int = 0
    seconds: float | None = None
    # Not columns of the experiment: stored beside it.
    examples: list[ExampleResult] = field(default_factory=list)
    llm_calls: list[LLMCall] = field(default_factory=list)
    view: str | None = None  # the candidate's view, stored with the experiment when first seen

    def account(self, m: Measurement) -> None:
        """Attributes a measurement's spend to the experiment (the gateway counted it for the run)."""
        self.cost_usd += m.cost_usd
        self.tokens += m.tokens
        self.seconds = (self.seconds or 0.0) + (m.seconds or 0.0)

    def measured(self, m: Measurement) -> None:
        """What the experiment keeps of the measurement it was decided on."""
        self.trace = m.trace[-TRACE_TAIL:] if m.trace else ""
        self.error = m.reason if m.status != "ok" else None
        self.examples = m.examples
        self.llm_calls = self.llm_calls + m.llm_calls

    def scored(self, samples: list[float], baseline: float, components: dict | None = None) -> None:
        self.samples = samples
        self.score = mean(samples)
        self.delta = self.score - baseline
        self.components = components

    def columns(self) -> dict[str, Any]:
        if isinstance(self.diff, Later):
            self.diff = self.diff.result()
        return {k: v for k, v in vars(self).items() if v is not None and k not in ("examples", "llm_calls", "view")}

    def attempt(self) -> Attempt:
        return Attempt(seq=self.seq, status=self.status, reason=self.reason, rationale=self.rationale or "",
                       score=self.score, delta=self.delta, trace=self.trace or "",
                       failing=failing(self.examples)[:5], meta=self.meta or {},
                       scores={e.id: e.score for e in self.examples if e.split == "train"})


DEFER_MOST = 65_536  # characters of a view past which its experiment is stored at once: a long write outlasts a short command


class Recorder:
    def __init__(self, store, run_id: int, state: RunState, events: Events, agent: Agent | None, defer: bool = False):
        self.store, self.run_id, self.state = store, run_id, state
        self.events, self.agent = events, agent
        self.defer = defer  # one experiment in flight: nothing else writes while its command runs
        self.pending: tuple[ExperimentRecord, dict] | None = None  # an experiment recorded, not yet written
        self._failed: Exception | None = None  # what writing it while a command ran raised, for `flush`
        self._writing = threading.Lock()  # the measuring thread may be writing it as the loop's flushes

    def record(self, rec: ExperimentRecord, status: str, reason: str, view: str | None = None) -> None:
        """Stores an experiment, moves the best to it when it is a keep (`view` is then its view), then tells."""
        rec.status, rec.reason = status, reason
        attempt = rec.attempt()
        self.state.count(attempt, rec.candidate)
        keep = status == "keep"
        self.flush()
        point("experiment.measured")
        if keep or not self.defer or len(rec.view or "") > DEFER_MOST:
            # The experiment and the run's best (and totals) in one transaction: a kill between
            # them would leave a resumed run comparing against a stale best.
            exp_id = self._store(rec, lambda i: dict(self._totals(), **(dict(best_experiment=i, best_score=rec.score) if keep else {})))
            point("experiment.committed")
        else:
            self.pending = rec, self._totals()
        if keep:
            self.state.best = Best(exp_id, rec.seq, view, rec.score, failing(rec.examples), attempt.scores)
        self.events.publish(ExperimentFinished(self.run_id, rec.seq, status, reason, rec.score, self.state.best.score, Used.of(self.state.spend)))
        if keep:
            self.events.publish(NewBest(self.run_id, rec.seq, rec.score, self.state.baseline.score if self.state.baseline else None))
        if status != "interrupted":
            self._observe(attempt)

    def behind(self) -> tuple[Callable[[], None], ...]:
        """The write left for the next command's time (core/process.py `meanwhile`), if any."""
        return (self._write_meanwhile,) if self.pending is not None else ()

    def _write_meanwhile(self) -> None:
        """The write left for later, while a command runs, if the store is free at once: waiting on
        another process's write would hold up seeing the command end. Else `flush` does it."""
        with self._writing:
            if self.pending is None:
                return
            try:
                if self.store.at_once(lambda: self._write(*self.pending)):
                    self.pending = None
            except Exception as exc:  # work done meanwhile must not raise: the next flush does
                self._failed, self.pending = exc, None

    def flush(self) -> None:
        """Writes the experiment left for later, if it is not written yet; before any other write."""
        with self._writing:
            failed, self._failed = self._failed, None
            if failed is not None:
                raise failed
            if self.pending is not None:
                pending, self.pending = self.pending, None
                self._write(*pending)

    def _write(self, rec: ExperimentRecord, totals: dict) -> None:
        self._store(rec, lambda i: totals)
        point("experiment.committed")

    def record_baseline(self, rec: ExperimentRecord, view: str, noise: float, fingerprint: str | None = None) -> None:
        """The baseline is the first best; it is no experiment of the agent's, so nobody is told.

        `fingerprint`: the surface's fingerprint of the file the baseline was read from, stored with it
        (a resumed run may measure its baseline from a file edited since the run began): `apply`
        compares the file with it."""
        rec.seq, rec.status, rec.rationale, rec.delta = 0, "baseline", "baseline", 0.0
        self.flush()
        point("baseline.measured")
        source = {"source_fingerprint": fingerprint} if fingerprint is not None else {}
        exp_id = self._store(rec, lambda i: dict(baseline_experiment=i, best_experiment=i, baseline_score=rec.score,
                                                 best_score=rec.score, noise=noise, **source))
        point("baseline.committed")
        self.state.count(rec.attempt(), rec.candidate)
        self.state.noise = noise
        self.state.baseline = self.state.best = Best(exp_id, 0, view, rec.score, failing(rec.examples), rec.attempt().scores)

    def _store(self, rec: ExperimentRecord, run=None) -> int:
        return self.store.commit_experiment(self.run_id, rec.examples, rec.llm_calls, run, view=rec.view, **rec.columns())

    def _observe(self, attempt: Attempt) -> None:
        try:
            self.agent.observe(attempt)
        except Exception as exc:  # the agent only listens here: its bug must not end the run
            self.events.warn(self.run_id, f"the agent '{self.agent.name}' failed when told of experiment {attempt.seq}: "
                                          f"{type(exc).__name__}: {exc}; the run goes on", exc, once="observe")

    def save_totals(self, **extra) -> None:
        self.flush()
        self.store.update_run(self.run_id, **self._totals(), **extra)

    def _totals(self) -> dict:
        spend = self.state.spend
        return dict(experiments=spend.experiments, usd=spend.usd, tokens=spend.tokens, seconds=spend.seconds)


def new_run(store, recipe, surface, goal: str) -> int:
    """The run's row: the recipe, its text and its configuration (secrets redacted)."""
    from .secrets import redact

    config = redact({
        "surface": {"kind": recipe.surface.cls.name, **recipe.surface.options},
        "metrics": [{"kind": m.cls.name, "weight": m.weight, "goal": m.goal, **m.options} for m in recipe.metrics],
        "guards": [{"kind": g.cls.name, "min": g.min, "max": g.max, **g.options} for g in recipe.guards],
        "agent": {"kind": recipe.agent.cls.name, **recipe.agent.options},
        "budget": recipe.budget.__dict__,
    })
    return store.start_run(recipe=recipe.name, recipe_path=str(recipe.path), recipe_text=recipe.text,
                           recipe_digest=recipe.digest, config=json.dumps(config), goal=goal,
                           source_path=str(surface.source()), source_fingerprint=surface.fingerprint())


def resumed(store, run_id: int) -> None:
    store.update_run(run_id, status="running", stop_reason=None, control=None, ended_at=None, pid=os.getpid())
