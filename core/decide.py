"""The keep rule: a change is kept only when it is really better."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .numbers import fmt, gain, sign

__all__ = ["fmt", "gain", "sign", "noise", "threshold", "ties", "Verdict", "verdict", "paired", "sign_test", "paired_verdict"]


def noise(samples: list[float]) -> float:
    import statistics  # here: a run imports this module before its first command starts (core/ahead.py)

    return statistics.stdev(samples) if len(samples) > 1 else 0.0


def threshold(noise_floor: float, min_delta: float, k: float) -> float:
    return max(min_delta, k * noise_floor)


def ties(value: float, best: float) -> bool:
    """The same score but for float rounding: relative to the scores' own size, so that on a
    metric of tiny numbers (1e-12) a worse score is never taken for a tie."""
    return math.isclose(value, best, rel_tol=1e-9)


@dataclass
class Verdict:
    keep: bool
    reason: str
    tie: bool = False  # kept for a shorter view at the same score, not for a gain


def verdict(value: float, best: float, goal: str, bar: float, *, shorter: bool = False) -> Verdict:
    """Keep or not, and why: one candidate score against the best (a noisy metric's win is
    measured again by core/keep.py before it is kept)."""
    g = gain(value, best, goal)
    if g > bar:
        return Verdict(True, f"beats the best ({fmt(best)}) by {fmt(g)}, more than the bar of {fmt(bar)}")
    if shorter and ties(value, best):
        return Verdict(True, "scores the same as the best with a shorter view (simplicity wins ties)", tie=True)
    if g > 0:
        return Verdict(False, f"better than the best ({fmt(best)}) by {fmt(g)}, not more than the bar of {fmt(bar)}")
    if ties(value, best):
        return Verdict(False, f"same score as the best ({fmt(best)})")
    return Verdict(False, f"worse than the best ({fmt(best)}) by {fmt(-g)}")


def paired(scores: dict[str, float], best: dict[str, float], goal: str) -> tuple[int, int]:
    """On how many examples both know `scores` beats `best`, and on how many it loses."""
    diffs = [gain(scores[e], best[e], goal) for e in scores.keys() & best.keys()]
    return sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)


def sign_test(wins: int, losses: int) -> float:
    """The one-sided sign test's p-value: the chance of this many wins or more among the examples
    that differ, were each a coin flip."""
    n = wins + losses
    return sum(math.comb(n, i) for i in range(wins, n + 1)) / 2 ** n if n else 1.0


def paired_verdict(scores: dict[str, float], best: dict[str, float], goal: str, level: float) -> str | None:
    """Why a gain is not progress example by example (None when it is): it must win on more
    examples than it loses against the best, by a sign test at `level`. With too few examples
    for any result to reach the level (under 5 at 0.05), more wins than losses is all it asks."""
    wins, losses = paired(scores, best, goal)
    p = sign_test(wins, losses)
    reachable = sign_test(len(scores.keys() & best.keys()), 0) <= level
    if wins > losses and (p <= level or not reachable):
        return None
    return (f"wins on {wins} example{'s' if wins != 1 else ''} and loses on {losses} against the best "
            f"(sign test p = {fmt(p)}, paired_level = {fmt(level)})")


