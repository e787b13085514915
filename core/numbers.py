"""Numbers as people read them: one formatter and one sign convention for every screen and file.

A "gain" is positive when better for the goal; a "change" is the signed raw difference.
"""

from __future__ import annotations

import math

def mean(values) -> float:
    """The mean of scores, as statistics.fmean gives it, also for scores near the largest float,
    whose sum is past it though their mean is not."""
    values = list(values)
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        return math.fsum(v / len(values) for v in values)


DIGITS = 4  # decimals an ordinary figure keeps; large ones keep 7 significant digits (-102983.3)


def fmt(x: float | None, digits: int = DIGITS) -> str:
    """Plain digits for ordinary magnitudes, e-notation only for very large or tiny ones."""
    if x is None:
        return "-"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if x == 0:
        return "0"
    if math.isnan(x) or math.isinf(x):
        return str(x)
    a = abs(x)
    if a >= 1e9 or a < 1e-4:
        return f"{x:.{digits}g}"
    order = math.floor(math.log10(a))
    decimals = max(digits, digits - 1 - order) if order < 0 else max(0, min(digits, digits + 2 - order))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_apart(a: float | None, b: float | None) -> tuple[str, str]:
    """Two figures with as many digits as it takes to show they differ (when they do)."""
    digits = DIGITS
    while a is not None and b is not None and a != b and fmt(a, digits) == fmt(b, digits) and digits < 17:
        digits += 1
    return fmt(a, digits), fmt(b, digits)


def sign(goal: str | None) -> int:
    return -1 if goal == "minimize" else 1


def gain(value: float, ref: float, goal: str | None) -> float:
    """How much better `value` is than `ref`, positive when better, whatever the goal."""
    return (value - ref) * sign(goal)


def gain_pct(baseline: float | None, best: float | None, goal: str | None) -> float | None:
    """The gain in % of the baseline, positive when better; None when there is no % of nothing."""
    if baseline is None or best is None or not baseline:
        return None
    return gain(best, baseline, goal) / abs(baseline) * 100 + 0.0  # never "-0.0%"


def gain_text(baseline: float | None, best: float | None, goal: str | None) -> str:
    """The gain as "+48.9%", or as a plain difference when the baseline is 0."""
    if baseline == 0 and best is not None:
        g = gain(best, baseline, goal)
        return f"+{fmt(g)}" if g > 0 else fmt(g) if g else "+0"
    pct = gain_pct(baseline, best, goal)
    return "-" if pct is None else f"{pct:+.1f}%"


def signed(x: float | None) -> str:
    """A figure with its sign always shown ("+3", "-0.5", "0")."""
    return "-" if x is None else "+" + fmt(x) if x > 0 else fmt(x)


def scores_line(baseline: float | None, best: float | None, goal: str | None) -> str:
    """"baseline X -> best Y (gain +Z%)", the figures told apart."""
    b, s = fmt_apart(baseline, best)
    g = gain_text(baseline, best, goal)
    return f"baseline {b} -> best {s}" + ("" if g == "-" else f" (gain {g})")
