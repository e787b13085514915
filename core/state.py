"""What a run knows between experiments: its baseline and best, the noise, what it has seen.

A resumed run rebuilds this from the store with the same `count` that keeps it up to
date live, so the two cannot drift apart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .budget import Spend
from .contracts import Attempt, ExampleResult
from .errors import OvernightError

HISTORY = 20  # experiments shown to the agent with their traces
# Statuses whose candidate was measured: the same digest is not measured again in a run.
MEASURED = ("baseline", "keep", "discard", "crash", "timeout", "guard_failed")
LIVE = ("running", "paused")  # statuses a process holds: the run died when that process is gone


@dataclass
class Best:
    exp_id: int
    seq: int
    view: str
    score: float
    failing: list[ExampleResult] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # each train example's score, for paired tests


@dataclass
class RunState:
    spend: Spend  # shared with the model gateway; it also counts experiments, keeps and failures
    baseline: Best | None = None
    best: Best | None = None
    noise: float = 0.0
    seen: dict[str, int] = field(default_factory=dict)  # digest -> seq of its first measurement
    history: deque[Attempt] = field(default_factory=lambda: deque(maxlen=HISTORY))
    ledger: list[Attempt] = field(default_factory=list)  # every rejected idea, so none is paid for twice
    next_seq: int = 1

    @classmethod
    def restore(cls, store, run_id: int, spend: Spend) -> "RunState":
        """The state of run `run_id` as the store has it: empty for a run that just started."""
        check_baseline(store, run_id)
        run = store.run(run_id)
        spend.seconds_before = run["seconds"] or 0.0
        spend.add(run["usd"] or 0.0, run["tokens"] or 0)
        state = cls(spend, noise=run["noise"] or 0.0)
        rows = store.experiments(run_id)
        for row, attempt in zip(rows, store.attempts(run_id)):
            attempt.scores = {r["example_id"]: r["score"] for r in store.example_results(row["id"]) if r["split"] == "train"}
            state.count(attempt, row["candidate"])
        base, best = from_rows(rows, run["goal"])
        if base is not None:
            state.baseline, state.best = _best(store, base), _best(store, best)
            if (run["baseline_experiment"], run["best_experiment"]) != (base["id"], best["id"]):
                # Written in one transaction since; a store of an older overnight may still disagree.
                store.update_run(run_id, baseline_experiment=base["id"], baseline_score=base["score"],
                                 best_experiment=best["id"], best_score=best["score"])
        return state

    def count(self, attempt: Attempt, candidate: str | None) -> None:
        """Takes one stored experiment into account: live as it is recorded, and on resume."""
        if attempt.status in MEASURED and candidate:
            self.seen.setdefault(candidate, attempt.seq)
        self.next_seq = max(self.next_seq, attempt.seq + 1)
        if attempt.status == "baseline":
            return
        if len(self.history) == self.history.maxlen:  # the oldest leaves what an agent reads in detail:
            leaving = self.history[0]  # the ledger keeps its idea and outcome, not its log (100,000 of
            leaving.trace, leaving.failing = "", []  # them would be half a gigabyte)
        self.history.append(attempt)
        if attempt.status != "keep":
            self.ledger.append(attempt)
        if attempt.status != "interrupted":  # it runs again on resume
            self.spend.count(attempt.status)

    def claim(self, digest: str, seq: int) -> int | None:
        """Marks a candidate as measured by experiment `seq`; the earlier seq when one already was."""
        if digest in self.seen:
            return self.seen[digest]
        self.seen[digest] = seq
        return None

    def release(self, seq: int) -> None:
        """Forgets the candidate of an experiment that was interrupted before it was measured."""
        self.seen = {d: s for d, s in self.seen.items() if s != seq}


def check_baseline(store, run_id: int) -> None:
    """Refuses a run that has experiments but no baseline (deleted by hand, say): a baseline measured
    anew from the file as it is now would judge the run's earlier keeps against another start."""
    if store.experiment_count(run_id) and store.experiment_at(run_id, 0) is None:
        raise OvernightError(f"Run {run_id} in {store.path} has experiments but no baseline (seq 0), "
                             f"so it cannot be resumed; start a new run.")


def from_rows(rows: list[dict], goal: str | None) -> tuple[dict | None, dict | None]:
    """(baseline row, best row) as the experiments themselves say, never a pointer alone:
    the best is the keep with the best score for the goal (the latest on a tie), else the baseline."""
    base = next((r for r in rows if r["status"] == "baseline"), None)
    if base is None:
        return None, None
    sign = -1 if goal == "minimize" else 1
    keeps = [r for r in rows if r["status"] == "keep" and r["score"] is not None]
    best = max(keeps, key=lambda r: (sign * r["score"], r["id"]), default=base)
    return base, best


def _best(store, row: dict) -> Best:
    examples = [ExampleResult(r["example_id"], r["input"], r["output"], r["expected"], r["score"], r["feedback"], r["split"])
                for r in store.example_results(row["id"])]
    return Best(row["id"], row["seq"], store.candidate(row["candidate"]), row["score"], failing(examples),
                {e.id: e.score for e in examples if e.split == "train"})


def failing(examples: list[ExampleResult]) -> list[ExampleResult]:
    """The train examples a candidate does not get right: what the agent should look at."""
    return [e for e in examples if e.split == "train" and e.score < 1.0]


def died(run: dict) -> bool:
    """True for a run still marked running or paused whose process is gone (a SIGKILL, a power cut)."""
    return run.get("status") in LIVE and process_gone(run)


def process_gone(run: dict) -> bool:
    """True when the process that ran `run` is gone, its pid now belongs to another program, or
    the run names none; False while it lives. Every command asks this one question."""
    from .files import pid_alive

    if not run.get("pid") or not pid_alive(run["pid"]):
        return True
    try:  # the pid was given to another program since
        cmdline = open(f"/proc/{run['pid']}/cmdline", "rb").read()
    except OSError:
        return False
    return b"python" not in cmdline and b"overnight" not in cmdline


def resume_command(run: dict) -> str:
    """How to resume a run: its recipe's folder as the run was given it (the recipe's name alone
    finds only a bundled or installed recipe), relative to here when it is below."""
    import os
    import shlex

    folder = os.path.dirname(run["recipe_path"] or "") or run["recipe"]
    try:
        relative = os.path.relpath(folder)
        folder = folder if relative.startswith("..") else relative
    except ValueError:
        pass
    return f"overnight run {shlex.quote(folder)} --resume"


def shown_status(run: dict) -> str:
    """The status as status, log and the TUI show it."""
    return f"died (resume with: {resume_command(run)})" if died(run) else run["status"]
