"""Numbers and times as the TUI shows them."""

from __future__ import annotations

import statistics
import time

from overnight.core.decide import fmt, gain

__all__ = ["fmt", "gain_pct", "gain_text", "duration", "when", "spread", "per_hour", "SYMBOLS"]

# Status marks that read without colour (NO_COLOR) as well as with it.
SYMBOLS = {
    "baseline": "○", "keep": "●", "discard": "·", "crash": "✗", "timeout": "⧗",
    "invalid": "?", "duplicate": "=", "guard_failed": "!", "interrupted": "–",
}


def gain_pct(baseline: float | None, best: float | None, goal: str | None) -> float | None:
    """The improvement in %, positive when better whatever the goal."""
    if baseline is None or best is None or not baseline:
        return None
    return gain(best, baseline, goal or "maximize") / abs(baseline) * 100 + 0.0  # never "-0.0%"


def gain_text(baseline: float | None, best: float | None, goal: str | None) -> str:
    """The gain in %, or as a plain difference when the baseline is 0 (no % of nothing)."""
    if baseline == 0 and best is not None:
        g = gain(best, baseline, goal or "maximize")
        return f"+{fmt(g)}" if g > 0 else fmt(g) if g else "+0"
    pct = gain_pct(baseline, best, goal)
    return "-" if pct is None else f"{pct:+.1f}%"


def duration(seconds: float | None) -> str:
    seconds = int(round(seconds or 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def when(stamp: float | None) -> str:
    if not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def per_hour(experiments: int | None, seconds: float | None) -> str:
    if not experiments or not seconds:
        return "-"
    rate = experiments / seconds * 3600
    return f"{rate:,.0f}/h" if rate >= 10 else f"{rate:.1f}/h"


def spread(samples: list[float]) -> str:
    """Mean, range and standard deviation of re-measurements, in one phrase."""
    if not samples:
        return ""
    mean = statistics.fmean(samples)
    text = f"mean {fmt(mean)} over {len(samples)}"
    if len(samples) > 1:
        text += f", {fmt(min(samples))}..{fmt(max(samples))}, sd {fmt(statistics.stdev(samples))}"
    return text
