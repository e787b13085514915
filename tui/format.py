"""Numbers and times as the TUI shows them."""

from __future__ import annotations

import statistics
import time

from overnight.core.numbers import fmt, gain, gain_pct, gain_text

__all__ = ["fmt", "fit", "gain_pct", "gain_text", "duration", "when", "spread", "per_hour", "SYMBOLS"]

# Status marks that read without colour (NO_COLOR) as well as with it.
SYMBOLS = {
    "baseline": "○", "keep": "●", "discard": "·", "crash": "✗", "timeout": "⧗",
    "invalid": "?", "duplicate": "=", "guard_failed": "!", "interrupted": "–",
}


def duration(seconds: float | None) -> str:
    seconds = int(round(seconds or 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def when(stamp: float | None) -> str:
    if not stamp:
        return "-"
    local = time.localtime(stamp)
    if local.tm_year != time.localtime().tm_year:
        return time.strftime("%Y-%m-%d", local)
    return time.strftime("%b %d %H:%M", local)


def per_hour(experiments: int | None, seconds: float | None) -> str:
    if not experiments or not seconds:
        return "-"
    rate = experiments / seconds * 3600
    return f"{rate:,.0f}/h" if rate >= 10 else f"{rate:.1f}/h"


def spread(samples: list[float]) -> str:
    """Re-measurements in one phrase: how many, their mean, and how far apart they are."""
    if not samples:
        return ""
    n = len(samples)
    if min(samples) == max(samples):
        return f"{fmt(samples[0])} all {n} times" if n > 1 else f"{fmt(samples[0])} once"
    return (f"mean {fmt(statistics.fmean(samples))} over {n}, from {fmt(min(samples))} to {fmt(max(samples))}, "
            f"sd {fmt(statistics.stdev(samples))}")


def fit(value: float | None, width: int, signed: bool = False) -> str:
    """A number in at most `width` characters, losing decimals before anything else."""
    if value is None:
        return "-"
    text = fmt(value)
    if signed and value > 0:
        text = "+" + text
    digits = 8
    while len(text) > width and digits > 1:
        text = f"{value:+.{digits}g}" if signed else f"{value:.{digits}g}"
        digits -= 1
    return text
