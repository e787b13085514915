"""The loop: propose -> check -> materialize -> measure -> decide -> record.

Agents propose and metrics measure; only the loop decides what is kept. With
`parallel` above one, several experiments are in flight at once (asyncio), each
measured in its own work folder, and decisions are taken one at a time as
measurements come back, against the best known at that moment.

This module tells the whole story; each step keeps its details in a module of its own:
the run's plugins, store and budget (setup.py), a baseline measured as `overnight run` starts
(ahead.py), what the run knows (state.py), experiments in flight, pause and stop (schedule.py),
measuring through the run's executor (measure.py), the keep decision (keep.py),
storing then moving the best then telling the others (record.py), the end of a run
(confirm.py) and its summary (summary.py).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import replace

from . import process
from .ahead import plan
from .confirm import Ending
from .contracts import Candidate, Context, MeasureRequest, Outcome, Proposal, Surface
from .decide import paired
from .numbers import fmt, gain, mean
from .errors import OvernightError
from .events import ExperimentStarted, RunFinished, RunStarted, Used
from .faults import point
from .keep import KeepRule
from .errors import BudgetExceeded
from .measure import once, sample
from .process import Later
from .record import ExperimentRecord, Recorder, diff_of, new_run, resumed
from .schedule import Scheduler
from .secrets import scrubbed
from .setup import Setup
from .state import RunState
from .summary import Summary, summarize

__all__ = ["Loop", "Setup", "Summary"]


class Loop:
    def __init__(self, setup: Setup, run_id: int | None = None):
        self.s = setup
        self.run_id = run_id  # None starts a new run; otherwise this unfinished one is resumed
        self.schedule = Scheduler(setup.store, setup.budget, setup.objective.goal)
        self.keep = KeepRule(setup.budget, setup.objective.goal, setup.objective.deterministic)
        self.decide_lock = asyncio.Lock()  # one decision at a time, against the best of that moment
        self.state: RunState | None = None
        self.recorder: Recorder | None = None

    # -- the run ----------------------------------------------------------------

    async def run(self) -> Summary:
        self._open()
        status = "failed"
        try:
            status = await self._course()
        except BaseException as exc:
            status = self._ended_by(exc)
            if status != "finished":
                raise
        finally:
            self.recorder.save_totals(status=status, stop_reason=self.schedule.stopping or "done", ended_at=time.time())
            summary = summarize(self.s.store, self.run_id, self.s.objective.goal)
            self.s.events.publish(RunFinished(self.run_id, summary))
        return summary

    def stop(self, reason: str) -> None:
        """Stops the run: no new experiment starts; those in flight are recorded as interrupted."""
        self.schedule.stop(reason)

    def interrupt(self, reason: str) -> None:
        """A stop's first half, safe from a signal handler or another thread: no new experiment
        starts and every command is killed at once, so a measurement in the loop's own thread
        returns; `stop`, in the loop's thread, does the rest."""
        self.schedule.interrupt(reason)

    def _open(self) -> None:
        """A new run's row, or the run to resume; either way its state is read from the store."""
        s = self.s
        process.allow()
        if self.run_id is None:
            self.run_id = new_run(s.store, s.recipe, s.surface, s.objective.goal)
            point("run.created")
        else:
            resumed(s.store, self.run_id)
        self.state = RunState.restore(s.store, self.run_id, s.spend)
        self.recorder = Recorder(s.store, self.run_id, self.state, s.events, s.agent, defer=s.budget.parallel == 1)
        self.schedule.settle = self.recorder.flush
        s.events.publish(RunStarted(self.run_id, s.recipe.name, s.budget, Used.of(s.spend), s.recipe.notify))

    async def _course(self) -> str:
        """Baseline, experiments, then, for a run that ran its course, holdout and confirmation."""
        if self.state.baseline is None:
            await self._baseline()
        if self.state.baseline is not None:  # None when stopped while measuring it
            self.s.agent.start(self.s.surface, self.s.store.attempts(self.run_id))
            await self.schedule.run(self._experiment, self.run_id, self.state)
        if self.schedule.stopped_early:
            return "stopped"  # resumable, unlike a run that ran its course
        point("run.ending")
        self.recorder.flush()
        end = Ending(self.s, self.run_id, self.state)
        if self.s.objective.has_examples:
            await end.holdout()
        await end.confirm()
        if self.schedule.interrupted:  # Ctrl-C or SIGTERM during the holdout or confirmation: --resume does them again
            return "stopped"
        return "finished"

    def _ended_by(self, exc: BaseException) -> str:
        """The run's status once `exc` ended it, with the reason why."""
        schedule = self.schedule
        if isinstance(exc, BudgetExceeded):
            # The cap ends the run where it is (say, before its holdout figure); only a run that
            # could not even measure its baseline has failed.
            schedule.stopping = f"{schedule.stopping}; {exc.reason}" if schedule.stopping else exc.reason
            return "finished" if self.state.baseline is not None else "failed"
        if isinstance(exc, OvernightError):
            schedule.stopping = exc.message
            return "failed"
        if isinstance(exc, Exception):  # a bug: the run says so, and the traceback follows
            schedule.stopping = f"overnight failed: {type(exc).__name__}: {exc}"
            return "failed"
        schedule.stopping = schedule.stopping or f"interrupted ({type(exc).__name__})"
        return "stopped"

    # -- the baseline ------------------------------------------------------------

    async def _baseline(self) -> None:
        s = self.s
        request, times = plan(s)
        if s.ahead is not None:  # being measured since the run started (core/ahead.py)
            view, found = s.ahead.view, s.ahead.result()
            s.ahead = None
        else:
            view = s.surface.read()
            found = await sample(s.executor, view, request, times, guards=True, until_failure=True)
        if found.capped:
            raise found.capped
        if found.failures:
            if self.schedule.interrupted:
                return  # its command was killed by the stop: not the baseline's fault
            m = found.last.measurement
            tail = "\n".join(m.trace.splitlines()[-20:])
            raise OvernightError(f"The baseline could not be measured ({m.status}): {m.reason}" + (f"\n{tail}" if tail else ""))
        first = found.first
        rec = ExperimentRecord(0, candidate=Candidate.of(view).digest, view=view)
        rec.account(first.measurement)
        rec.measured(first.measurement)
        rec.scored(found.values, found.mean, first.measurement.components)
        rec.reason = f"measured {times} time{'s' if times > 1 else ''}; noise {fmt(found.noise)}"
        if first.guard_problem:
            rec.reason += f"; warning: the baseline already fails a guard ({first.guard_problem})"
        self.recorder.record_baseline(rec, view, found.noise, s.surface.fingerprint())

    # -- one experiment ---------------------------------------------------------

    async def _experiment(self) -> None:
        parent = self.state.best
        proposal = await self._propose(self._context())
        if proposal is None:
            return
        rec = ExperimentRecord(self.state.next_seq, proposal.rationale, parent=parent.exp_id, agent_trace=proposal.trace,
                               meta=proposal.meta, cost_usd=proposal.cost_usd, tokens=proposal.tokens,
                               llm_calls=list(proposal.llm_calls))
        self.state.next_seq += 1
        point("experiment.proposed")
        self.s.events.publish(ExperimentStarted(self.run_id, rec.seq, proposal.rationale))
        try:
            await self._check_measure_decide(rec, proposal, parent.view)
        except asyncio.CancelledError:
            self.state.release(rec.seq)
            self.recorder.record(rec, "interrupted", self.schedule.stopping or "interrupted")
        except BudgetExceeded as exc:  # a model call of the measurement would have passed a cap
            self.schedule.finish(exc.reason)
            self.state.release(rec.seq)
            self.recorder.record(rec, "interrupted", exc.reason)

    async def _propose(self, context: Context) -> Proposal | None:
        """The agent's next proposal; None when there is nothing to record."""
        try:
            agent = self.s.agent
            proposal = agent.propose(context) if getattr(agent, "instant", False) else await asyncio.to_thread(agent.propose, context)
        except asyncio.CancelledError:
            return None  # nothing was proposed yet, so nothing to record
        except BudgetExceeded as exc:  # its call would have passed a cap, so it was not made
            self.schedule.finish(exc.reason)
            return None
        except OvernightError:
            raise  # the person must fix something (a missing key, say): the run fails, saying what
        except Exception as exc:  # a bug in the agent: recorded as invalid; max_failures ends a run it keeps breaking
            return scrubbed(Proposal(error=f"the agent failed: {type(exc).__name__}: {exc}", trace=traceback.format_exc()))
        if proposal is None:
            self.schedule.finish(getattr(self.s.agent, "exhausted", "") or "the agent has no more proposals")
        return scrubbed(proposal)  # its rationale and trace, as they come back: no sink sees a secret

    async def _check_measure_decide(self, rec: ExperimentRecord, proposal: Proposal, base: str) -> None:
        s = self.s
        view, problem = view_of(proposal, base, s.surface)
        if problem:
            self.recorder.record(rec, "invalid", problem)
            return
        rec.candidate, rec.view = Candidate.of(view).digest, view
        rec.diff = await diff_of(s.surface, self.state.baseline.view, view)
        first = self.state.claim(rec.candidate, rec.seq)
        if first is not None:
            self.recorder.record(rec, "duplicate", f"same candidate as experiment {first}; not measured again")
            return
        refused = s.objective.screen(view)
        if refused:  # measuring it would reward copying the answers: refuse it, say why
            self.recorder.record(rec, "guard_failed", refused)
            return
        if proposal.screen_on and s.objective.has_examples:
            lost = await self._screen(rec, view, proposal.screen_on)
            if lost:
                self.recorder.record(rec, *lost)
                return
        later = (rec.diff,) if isinstance(rec.diff, Later) else ()
        outcome = await self._once(view, self._request(), guards=True, meanwhile=(*self.recorder.behind(), *later))
        async with self.decide_lock:
            status, reason = await self.keep.decide(rec, view, outcome, self.state,
                                                    again=lambda: self._once(view, self._request(cache=False)))
            self.recorder.record(rec, status, reason, view)

    async def _once(self, view: str, request: MeasureRequest, **how) -> Outcome:
        """One measurement of an experiment. A stop that came meanwhile killed its command (perhaps
        as it ran in this very thread): the experiment is interrupted, whatever the outcome says."""
        outcome = await once(self.s.executor, view, request, **how)
        if self.schedule.interrupted:
            raise asyncio.CancelledError
        return outcome

    async def _screen(self, rec: ExperimentRecord, view: str, parent: dict[str, float]) -> tuple[str, str] | None:
        """Measures a proposal on its minibatch first: the status and reason when it loses to its
        parent there (or fails), None when it goes on to all train examples."""
        m = (await self._once(view, replace(self._request(), examples=sorted(parent)), guards=False)).measurement
        rec.account(m)
        rec.measured(m)
        if not m.ok:
            return m.status, m.reason
        mine = {e.id: e.score for e in m.examples if e.id in parent}
        if not mine:
            return None
        ours, theirs = (mean(d[e] for e in mine) for d in (mine, parent))
        if gain(ours, theirs, self.s.objective.goal) >= 0:
            return None
        wins, losses = paired(mine, parent, self.s.objective.goal)
        return "discard", (f"screened out: on a minibatch of {len(mine)} train examples it scores {fmt(ours)} against "
                           f"its parent's {fmt(theirs)} (better on {wins}, worse on {losses}); not measured on all train examples")

    def _request(self, cache: bool = True) -> MeasureRequest:
        best = self.state.best
        return MeasureRequest(self.s.budget.per_experiment_seconds, cache=cache,
                              best_view=best.view, best_score=best.score)

    def _context(self) -> Context:
        s, state = self.s, self.state
        return Context(
            best_view=state.best.view, best_score=state.best.score, baseline_score=state.baseline.score,
            goal=s.objective.goal, rules=s.surface.rules(), metric=s.objective.describe(),
            parameters=s.surface.parameters(), history=list(state.history), ledger=state.ledger,
            failing=state.best.failing, notes=[n["text"] for n in s.store.notes(s.recipe.name)],
            budget_left=state.spend.left(s.budget), seq=state.next_seq,
        )


def view_of(proposal: Proposal, base: str, surface: Surface) -> tuple[str, str | None]:
    """The view a proposal makes of `base`, and why it cannot be measured (None when it can)."""
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
    problems = surface.problems(view, base)
    if problems:
        return view, "the surface rejected it: " + "; ".join(problems)
    return view, None
