"""The keep rule: a change is kept only when it is really better."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .numbers import fmt, gain, sign

__all__ = ["fmt", "gain", "sign", "noise", "threshold", "ties", "Verdict", "verdict"]


def noise(samples: list[float]) -> float:
    return statistics.stdev(samples) if len(samples) > 1 else 0.0


def threshold(noise_floor: float, min_delta: float, k: float) -> float:
    return max(min_delta, k * noise_floor)


def ties(value: float, best: float) -> bool:
    return abs(value - best) <= 1e-9 * max(1.0, abs(best))


@dataclass
class Verdict:
    keep: bool
    reason: str


def verdict(value: float, best: float, goal: str, bar: float, *, shorter: bool = False) -> Verdict:
    """Keep or not, and why: one candidate score against the best (a noisy metric's win is
    measured again by core/keep.py before it is kept)."""
    g = gain(value, best, goal)
    if g > bar:
        return Verdict(True, f"beats the best ({fmt(best)}) by {fmt(g)}, more than the bar of {fmt(bar)}")
    if shorter and ties(value, best):
        return Verdict(True, "scores the same as the best with a shorter view (simplicity wins ties)")
    if g > 0:
        return Verdict(False, f"better than the best ({fmt(best)}) by {fmt(g)}, not more than the bar of {fmt(bar)}")
    if ties(value, best):
        return Verdict(False, f"same score as the best ({fmt(best)})")
    return Verdict(False, f"worse than the best ({fmt(best)}) by {fmt(-g)}")

