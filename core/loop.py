"""The loop: propose -> check -> materialize -> measure -> decide -> record.

Agents propose and metrics measure; only this module decides what is kept. With
`parallel` above one, several experiments are in flight at once (asyncio), each
measured in its own work folder, and decisions are taken one at a time as
measurements come back, against the best known at that moment.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import confirm, process
from .budget import Budget, Spend
from .contracts import FAILURES, Agent, Attempt, Candidate, Context, ExampleResult, MeasureRequest, Proposal, Surface
from .decide import fmt, gain, judge, noise, threshold
from .errors import OvernightError
from .events import EXPERIMENT_FINISHED, EXPERIMENT_STARTED, NEW_BEST, RUN_FINISHED, RUN_STARTED, Events
from .executor import LocalExecutor, Outcome
from .llm import BudgetExceeded
from .objective import Objective
from .store import Store

HISTORY = 20  # experiments shown to the agent with their traces
TRACE_TAIL = 4000  # characters of a trace kept for the agent
# Statuses whose candidate was measured: the same digest is not measured again in a run.
MEASURED = ("baseline", "keep", "discard", "crash", "timeout", "guard_failed")
STOPPED_ON_REQUEST = "stopped on request"


@dataclass
class Setup:
    """A run ready to go: built plugins, the store, and where to report."""

    recipe: Any  # core.recipe.Recipe
    surface: Surface
    objective: Objective
    agent: Agent
    budget: Budget
    store: Store
    events: Events = field(default_factory=Events)
    executor: Any = None
    llm: Any = None  # the run's LLM gateway, when a plugin uses a model
    spend: Spend = field(default_factory=Spend)


@dataclass
class Best:
    exp_id: int
    seq: int
    view: str
    score: float
    failing: list[ExampleResult] = field(default_factory=list)


@dataclass
class Summary:
    run_id: int
    recipe: str
    status: str
    stop_reason: str
    counts: dict[str, int]
    experiments: int
    kept: int
    goal: str
    baseline: float | None
    best: float | None
    best_seq: int | None
    holdout_baseline: float | None
    holdout_best: float | None
    usd: float
    tokens: int
    seconds: float
    # Measured again afresh when the run ended (core/confirm.py); None when nothing was confirmed.
    confirmed_baseline: float | None = None
    confirmed_best: float | None = None
    confirmed_holdout_baseline: float | None = None
    confirmed_holdout_best: float | None = None
    confirmation: str = ""
    held: bool | None = None


class Loop:
    def __init__(self, setup: Setup, run_id: int | None = None):
        self.s = setup
        self.store = setup.store
        self.budget = setup.budget
        self.spend = setup.spend
        self.objective = setup.objective
        self.executor = setup.executor or LocalExecutor(setup.surface, setup.objective)
        self.run_id = run_id
        self.goal = self.objective.goal
        self.best: Best | None = None
        self.baseline: Best | None = None
        self.noise = 0.0
        self.seen: dict[str, int] = {}  # digest -> seq of its first measurement
        self.history: deque[Attempt] = deque(maxlen=HISTORY)
        self.ledger: list[Attempt] = []
        self.next_seq = 1
        self.stopping: str | None = None
        self.interrupted = False  # set by stop(): Ctrl-C, SIGTERM, or the TUI
        self.decide_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()

    # -- the run ----------------------------------------------------------------

    async def run(self) -> Summary:
        recipe = self.s.recipe
        process.allow()
        if self.run_id is None:
            self.run_id = self.store.start_run(
                recipe=recipe.name, recipe_path=str(recipe.path), recipe_text=recipe.text,
                recipe_digest=recipe.digest, config=json.dumps(_config(recipe)), goal=self.goal,
                source_path=str(self.s.surface.source()), source_fingerprint=self.s.surface.fingerprint(),
            )
        else:
            self._restore()
            self.store.update_run(self.run_id, status="running", stop_reason=None, control=None, ended_at=None, pid=os.getpid())
        if self.s.llm:
            self.s.llm.run_id = self.run_id
        self.s.events.publish(RUN_STARTED, self.run_id, recipe=recipe.name, budget=self.budget)
        status = "finished"
        try:
            if self.baseline is None:
                await self._measure_baseline()
            if self.baseline is not None:  # None when stopped while measuring it
                self.s.agent.start(self.s.surface, self.store.attempts(self.run_id))
                await self._experiments()
            if self.interrupted or self.stopping == STOPPED_ON_REQUEST:
                status = "stopped"  # resumable, unlike a run that ran its course
            else:
                if self.objective.has_examples:
                    await self._measure_holdout()
                await self._confirm()
        except BudgetExceeded as exc:
            # The cap ends the run where it is (say, before its holdout figure); only a run that
            # could not even measure its baseline has failed.
            self.stopping = f"{self.stopping}; {exc.reason}" if self.stopping else exc.reason
            if self.baseline is None:
                status = "failed"
                raise
        except OvernightError as exc:
            status, self.stopping = "failed", exc.message
            raise
        except Exception as exc:  # a bug: the run says so, and the traceback follows
            status, self.stopping = "failed", f"overnight failed: {type(exc).__name__}: {exc}"
            raise
        except BaseException as exc:
            status = "stopped"
            self.stopping = self.stopping or f"interrupted ({type(exc).__name__})"
            raise
        finally:
            self._save_totals(status=status, stop_reason=self.stopping or "done", ended_at=time.time())
            summary = self.summary()
            self.s.events.publish(RUN_FINISHED, self.run_id, summary=summary)
        return summary

    def stop(self, reason: str) -> None:
        """Stops the run: no new experiment starts; those in flight are recorded as interrupted."""
        self.stopping = reason
        self.interrupted = True
        process.kill_all()
        for task in list(self.tasks):
            task.cancel()

    async def _experiments(self) -> None:
        while True:
            while not self.stopping and len(self.tasks) < self.budget.parallel:
                self.stopping = self._why_stop()
                if self.stopping:
                    break
                task = asyncio.create_task(self._experiment())
                self.tasks.add(task)
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

    def _why_stop(self) -> str | None:
        reason = self.spend.exhausted(self.budget, in_flight=len(self.tasks))
        if reason:
            return reason
        if self.budget.target is not None and self.best and gain(self.best.score, self.budget.target, self.goal) >= 0:
            return f"target reached ({fmt(self.budget.target)})"
        return None

    async def _obey_controls(self) -> None:
        """Pause and stop requests arrive through the store, from the TUI or another terminal."""
        control = self.store.control(self.run_id)
        while control == "pause" and not self.stopping:
            self.store.update_run(self.run_id, status="paused")
            await asyncio.sleep(0.5)
            control = self.store.control(self.run_id)
            if control != "pause":
                self.store.update_run(self.run_id, status="running")
        if control == "stop" and not self.stopping:
            self.stopping = STOPPED_ON_REQUEST

    # -- one experiment ---------------------------------------------------------

    async def _experiment(self) -> None:
        parent = self.best
        context = self._context()
        try:
            proposal = await asyncio.to_thread(self.s.agent.propose, context)
        except asyncio.CancelledError:
            return  # nothing was proposed yet, so nothing to record
        except BudgetExceeded as exc:  # its call would have passed a cap, so it was not made
            self.stopping = self.stopping or exc.reason
            return
        except OvernightError:
            raise  # the person must fix something (a missing key, say): the run fails, saying what
        except Exception as exc:  # a bug in the agent: recorded as invalid; max_failures ends a run it keeps breaking
            proposal = Proposal(error=f"the agent failed: {type(exc).__name__}: {exc}", trace=traceback.format_exc())
        if proposal is None:
            if not self.stopping:
                self.stopping = getattr(self.s.agent, "exhausted", "") or "the agent has no more proposals"
            return
        seq = self.next_seq
        self.next_seq += 1
        started = time.time()
        self.s.events.publish(EXPERIMENT_STARTED, self.run_id, seq=seq, rationale=proposal.rationale)
        row: dict[str, Any] = dict(
            seq=seq, parent=parent.exp_id if parent else None, rationale=proposal.rationale,
            agent_trace=proposal.trace, meta=proposal.meta, started_at=started,
            cost_usd=proposal.cost_usd, tokens=proposal.tokens,
        )
        try:
            view, problem = self._view_of(proposal, parent.view)
            if problem:
                return await self._record(row, "invalid", problem, proposal=proposal)
            candidate = Candidate.of(view)
            row.update(candidate=candidate.digest, diff=self.s.surface.diff(self.baseline.view, view))
            self.store.put_candidate(candidate.digest, view)
            if candidate.digest in self.seen:
                first = self.seen[candidate.digest]
                return await self._record(row, "duplicate", f"same candidate as experiment {first}; not measured again", proposal=proposal)
            self.seen[candidate.digest] = seq
            refused = self.objective.screen(view)
            if refused:  # measuring it would reward copying the answers: refuse it, say why
                return await self._record(row, "guard_failed", refused, proposal=proposal)
            outcome = await self._measure(view, MeasureRequest(self.budget.per_experiment_seconds, llm=self.s.llm,
                                                               best_view=self.best.view, best_score=self.best.score))
            await self._decide(row, view, outcome, proposal)
        except asyncio.CancelledError:
            self.seen = {d: s for d, s in self.seen.items() if s != seq}
            await asyncio.shield(self._record(row, "interrupted", self.stopping or "interrupted", proposal=proposal))
        except BudgetExceeded as exc:  # a model call of the measurement would have passed a cap
            self.stopping = self.stopping or exc.reason
            self.seen = {d: s for d, s in self.seen.items() if s != seq}
            await self._record(row, "interrupted", exc.reason, proposal=proposal)

    def _view_of(self, proposal: Proposal, base: str) -> tuple[str, str | None]:
        if proposal.error:
            return base, f"the agent's proposal could not be used: {proposal.error}"
        if proposal.view is not None:
            view = proposal.view
        elif proposal.edits:
            view = base
            for old, new in proposal.edits:
                if old not in view:
                    snippet = old if len(old) < 60 else old[:57] + "..."
                    return base, f"the text to replace was not found in the current best view: {snippet!r}"
                view = view.replace(old, new, 1)
        else:
            return base, "the proposal holds neither a view nor an edit"
        problems = self.s.surface.problems(view, base)
        if problems:
            return view, "the surface rejected it: " + "; ".join(problems)
        return view, None

    async def _measure(self, view: str, request: MeasureRequest, guards: bool = True) -> Outcome:
        limit = request.seconds
        try:
            # The metric enforces its own limit (a subprocess is killed); this is the backstop
            # for an in-process metric that ignores it.
            return await asyncio.wait_for(asyncio.to_thread(self.executor.measure, view, request, guards), limit + 5)
        except asyncio.TimeoutError:
            from .contracts import Measurement

            return Outcome(Measurement.timeout(limit))

    async def _decide(self, row: dict, view: str, outcome: Outcome, proposal: Proposal) -> None:
        m = outcome.measurement
        self._account(row, m)
        if not m.ok:
            return await self._record(row, m.status, m.reason, measurement=m, proposal=proposal)
        samples = [m.value]
        async with self.decide_lock:
            bar = threshold(self.noise, self.budget.min_delta, self.budget.k)
            verdict = judge(m.value, self.best.score, self.goal, bar, shorter=len(view) < len(self.best.view))
            if verdict.keep and not self.objective.deterministic:
                again = await self._measure(view, MeasureRequest(self.budget.per_experiment_seconds, cache=False, llm=self.s.llm,
                                                                 best_view=self.best.view, best_score=self.best.score), guards=False)
                self._account(row, again.measurement)
                if again.measurement.ok:
                    samples.append(again.measurement.value)
                mean = statistics.fmean(samples)
                if len(samples) < 2 or gain(again.measurement.value, self.best.score, self.goal) <= 0 or gain(mean, self.best.score, self.goal) <= bar:
                    row.update(score=mean, samples=samples, delta=mean - self.baseline.score)
                    return await self._record(row, "discard", f"{verdict.reason}, but the confirming re-measurement did not agree ({', '.join(fmt(s) for s in samples)})", measurement=m, proposal=proposal)
            score = statistics.fmean(samples)
            row.update(score=score, samples=samples, components=m.components, delta=score - self.baseline.score)
            if verdict.keep and outcome.guard_problem:
                return await self._record(row, "guard_failed", outcome.guard_problem, measurement=m, proposal=proposal)
            if verdict.keep:
                exp_id = await self._record(row, "keep", verdict.reason, measurement=m, proposal=proposal)
                self.best = Best(exp_id, row["seq"], view, score, _failing(m.examples))
                self.store.update_run(self.run_id, best_experiment=exp_id, best_score=score)
                self.s.events.publish(NEW_BEST, self.run_id, seq=row["seq"], score=score)
                return
            return await self._record(row, "discard", verdict.reason, measurement=m, proposal=proposal)

    def _account(self, row: dict, m) -> None:
        # Spend is counted by the LLM gateway as each call is made (so caps hold mid-way);
        # here it is only attributed to the experiment.
        row["cost_usd"] = row.get("cost_usd", 0.0) + m.cost_usd
        row["tokens"] = row.get("tokens", 0) + m.tokens
        row["seconds"] = row.get("seconds", 0.0) + (m.seconds or 0.0)

    async def _record(self, row: dict, status: str, reason: str, *, measurement=None, proposal=None) -> int:
        row.update(status=status, reason=reason)
        if measurement is not None:
            row.setdefault("trace", measurement.trace[-TRACE_TAIL:] if measurement.trace else "")
            if measurement.status != "ok":
                row["error"] = measurement.reason
        examples = measurement.examples if measurement is not None else []
        exp_id = self.store.record_experiment(self.run_id, examples=examples, **row)
        for call in (proposal.llm_calls if proposal else []):
            self.store.record_llm_call(call, run_id=self.run_id, experiment_id=exp_id)
        for call in (measurement.llm_calls if measurement is not None else []):
            self.store.record_llm_call(call, run_id=self.run_id, experiment_id=exp_id)
        if status != "interrupted":
            self.spend.experiments += 1
            self.spend.since_keep = 0 if status == "keep" else self.spend.since_keep + 1
            self.spend.failures_in_a_row = self.spend.failures_in_a_row + 1 if status in FAILURES else 0
        attempt = Attempt(
            seq=row["seq"], status=status, reason=reason, rationale=row.get("rationale") or "",
            score=row.get("score"), delta=row.get("delta"), view=None, trace=row.get("trace") or "",
            failing=_failing(examples)[:5], meta=row.get("meta") or {},
        )
        self.history.append(attempt)
        if status != "keep":
            self.ledger.append(attempt)
        self._save_totals()
        self.s.events.publish(EXPERIMENT_FINISHED, self.run_id, seq=row["seq"], status=status, reason=reason,
                              score=row.get("score"), best=self.best.score if self.best else None)
        if proposal is not None and status != "interrupted":
            self.s.agent.observe(attempt)
        return exp_id

    def _context(self) -> Context:
        notes = [n["text"] for n in self.store.notes(self.s.recipe.name)]
        return Context(
            best_view=self.best.view, best_score=self.best.score, baseline_score=self.baseline.score,
            goal=self.goal, rules=self.s.surface.rules(), metric=self.objective.describe(),
            parameters=self.s.surface.parameters(), history=list(self.history), ledger=self.ledger,
            failing=self.best.failing, notes=notes, budget_left=self.spend.left(self.budget), seq=self.next_seq,
        )

    # -- baseline, holdout, resume -------------------------------------------------

    async def _measure_baseline(self) -> None:
        view = self.s.surface.read()
        repeats = self.objective.repeats or (1 if self.objective.deterministic else 3)
        samples, first = [], None
        for i in range(repeats):
            outcome = await self._measure(view, MeasureRequest(self.budget.per_experiment_seconds, cache=i == 0, llm=self.s.llm))
            m = outcome.measurement
            if not m.ok and self.interrupted:
                return  # its command was killed by the stop: not the baseline's fault
            if not m.ok:
                tail = "\n".join(m.trace.splitlines()[-20:])
                raise OvernightError(f"The baseline could not be measured ({m.status}): {m.reason}" + (f"\n{tail}" if tail else ""))
            first = first or outcome
            samples.append(m.value)
        candidate = Candidate.of(view)
        self.store.put_candidate(candidate.digest, view)
        self.noise = noise(samples)
        score = statistics.fmean(samples)
        m = first.measurement
        reason = f"measured {repeats} time{'s' if repeats > 1 else ''}; noise {fmt(self.noise)}"
        if first.guard_problem:
            reason += f"; warning: the baseline already fails a guard ({first.guard_problem})"
        exp_id = self.store.record_experiment(
            self.run_id, examples=m.examples, seq=0, candidate=candidate.digest, status="baseline", reason=reason,
            score=score, samples=samples, components=m.components, delta=0.0, trace=m.trace[-TRACE_TAIL:],
            started_at=time.time(), seconds=m.seconds, cost_usd=m.cost_usd, tokens=m.tokens, rationale="baseline",
        )
        for call in m.llm_calls:
            self.store.record_llm_call(call, run_id=self.run_id, experiment_id=exp_id)
        self.baseline = self.best = Best(exp_id, 0, view, score, _failing(m.examples))
        self.seen[candidate.digest] = 0
        self.store.update_run(self.run_id, baseline_experiment=exp_id, best_experiment=exp_id,
                              baseline_score=score, best_score=score, noise=self.noise)

    async def _measure_holdout(self) -> None:
        request = lambda: MeasureRequest(self.budget.per_experiment_seconds, split="holdout", llm=self.s.llm)
        figures = {}
        for name, best in (("baseline", self.baseline), ("best", self.best)):
            if name == "best" and best.exp_id == self.baseline.exp_id:
                figures["best"] = figures["baseline"]
                continue
            outcome = await self._measure(best.view, request(), guards=False)
            m = outcome.measurement
            for call in m.llm_calls:
                self.store.record_llm_call(call, run_id=self.run_id, experiment_id=best.exp_id)
            figures[name] = m.value if m.ok else None
            self.store.update_experiment(best.exp_id, examples=[e for e in m.examples if e.split == "holdout"], holdout_score=figures[name])
        self.store.update_run(self.run_id, holdout_baseline=figures["baseline"], holdout_best=figures["best"])

    async def _confirm(self) -> None:
        """Measures the baseline and the best again afresh: a lucky keep shows here, not in the morning."""
        if self.best is None or self.best.exp_id == self.baseline.exp_id:
            return  # nothing was kept: no gain to confirm
        times = 1 if self.objective.deterministic else (self.objective.repeats or 3)
        c = await confirm.measure_again(
            lambda view, request: self._measure(view, request, guards=False),
            {"baseline": self.baseline.view, "best": self.best.view}, times=times,
            seconds=self.budget.per_experiment_seconds, llm=self.s.llm, holdout=self.objective.has_examples)
        for name, call in c.llm_calls:
            self.store.record_llm_call(call, run_id=self.run_id, experiment_id=getattr(self, name).exp_id)
        confirm.judge(c, reported=self.best.score, baseline=self.baseline.score, goal=self.goal,
                      run_noise=self.noise, min_delta=self.budget.min_delta, k=self.budget.k)
        self.store.update_run(self.run_id, **c.row())

    def _restore(self) -> None:
        """Picks up a run where an earlier session left it, counting what it spent."""
        run = self.store.run(self.run_id)
        rows = self.store.experiments(self.run_id)
        base = next((r for r in rows if r["status"] == "baseline"), None)
        self.spend.seconds_before = run["seconds"] or 0.0
        self.spend.usd, self.spend.tokens = run["usd"] or 0.0, run["tokens"] or 0
        if base is None:
            return
        view = self.store.candidate(base["candidate"])
        self.baseline = Best(base["id"], 0, view, base["score"], self._failing_of(base["id"]))
        self.noise = run["noise"] or 0.0
        best_row = self.store.experiment(run["best_experiment"]) if run["best_experiment"] else base
        self.best = Best(best_row["id"], best_row["seq"], self.store.candidate(best_row["candidate"]), best_row["score"], self._failing_of(best_row["id"]))
        for r in rows:
            if r["status"] in MEASURED and r["candidate"]:
                self.seen.setdefault(r["candidate"], r["seq"])
            if r["status"] in ("baseline", "interrupted"):
                continue
            self.spend.experiments += 1
            self.spend.since_keep = 0 if r["status"] == "keep" else self.spend.since_keep + 1
            self.spend.failures_in_a_row = self.spend.failures_in_a_row + 1 if r["status"] in FAILURES else 0
        attempts = self.store.attempts(self.run_id)
        self.history.extend(a for a in attempts if a.status != "baseline")
        self.ledger = [a for a in attempts if a.status not in ("baseline", "keep")]
        self.next_seq = max(r["seq"] for r in rows) + 1

    def _failing_of(self, exp_id: int) -> list[ExampleResult]:
        rows = self.store.example_results(exp_id)
        return _failing([ExampleResult(r["example_id"], r["input"], r["output"], r["expected"], r["score"], r["feedback"], r["split"]) for r in rows])

    def _save_totals(self, **extra) -> None:
        self.store.update_run(self.run_id, experiments=self.spend.experiments, usd=self.spend.usd,
                              tokens=self.spend.tokens, seconds=self.spend.seconds, **extra)

    def summary(self) -> Summary:
        run = self.store.run(self.run_id)
        counts = self.store.counts(self.run_id)
        best_row = self.store.experiment(run["best_experiment"]) if run["best_experiment"] else None
        return Summary(
            run_id=self.run_id, recipe=run["recipe"], status=run["status"], stop_reason=run["stop_reason"] or "",
            counts=counts, experiments=sum(n for s, n in counts.items() if s != "baseline"),
            kept=counts.get("keep", 0), goal=self.goal, baseline=run["baseline_score"], best=run["best_score"],
            best_seq=best_row["seq"] if best_row else None, holdout_baseline=run["holdout_baseline"],
            holdout_best=run["holdout_best"], usd=run["usd"] or 0.0, tokens=run["tokens"] or 0, seconds=run["seconds"] or 0.0,
            confirmed_baseline=run["confirmed_baseline"], confirmed_best=run["confirmed_best"],
            confirmed_holdout_baseline=run["confirmed_holdout_baseline"], confirmed_holdout_best=run["confirmed_holdout_best"],
            confirmation=run["confirmation"] or "", held=None if run["confirmed_held"] is None else bool(run["confirmed_held"]),
        )


def _failing(examples: list[ExampleResult]) -> list[ExampleResult]:
    return [e for e in examples if e.split == "train" and e.score < 1.0]


def _config(recipe) -> dict:
    from .secrets import redact

    return redact({
        "surface": {"kind": recipe.surface.cls.name, **recipe.surface.options},
        "metrics": [{"kind": m.cls.name, "weight": m.weight, **m.options} for m in recipe.metrics],
        "guards": [{"kind": g.cls.name, "min": g.min, "max": g.max, **g.options} for g in recipe.guards],
        "agent": {"kind": recipe.agent.cls.name, **recipe.agent.options},
        "budget": recipe.budget.__dict__,
    })
