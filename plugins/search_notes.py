"""People's notes that fix or bound a parameter, read by the search agent.

A steering line or a review note such as "keep B3 at 12", "B3 between 10 and 20",
"epochs at most 8" or "set plan to pro" narrows the space the agent searches; any
other note is for agents that read prose. A parameter is named by its full name
(`Inputs!B3`, `train.epochs`), by a cell's address without its sheet (`B3`), or by
the last part of a key (`epochs`) when no other parameter ends the same way.
Later notes win: a fix or a range replaces what earlier notes said about that
parameter, a one-sided bound replaces that side.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from overnight.core.contracts import Parameter

NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?"
VALUE = rf"(?:{NUM}|\"[^\"]*\"|'[^']*'|[\w.-]+)"
# What follows a parameter's name. Strings, not compiled patterns: `re` compiles each the first time
# a note is read and keeps it, and a run with no notes (most runs) never pays for compiling them.
LEAD = r"^\s*(?:(?:is|stays?|must be|should be|kept|remains?)\s+)?"  # "B3 is ...", "B3 must be ..."
RANGE = rf"{LEAD}(?:between|from|in|within)\s*\[?\s*({NUM})\s*(?:and|to|\.\.|-|,)\s*({NUM})\s*\]?"
AT_MOST = rf"{LEAD}(?:at most|no more than|not above|not over|up to|<=|≤|=<)\s*({NUM})"
AT_LEAST = rf"{LEAD}(?:at least|no less than|not below|not under|>=|≥|=>)\s*({NUM})"
BELOW = rf"{LEAD}(?:below|under|less than|lower than|<)\s*({NUM})"
ABOVE = rf"{LEAD}(?:above|over|more than|greater than|higher than|>)\s*({NUM})"
FIX = rf"^\s*(?:=|==|is fixed (?:at|to)|fixed (?:at|to)|stays? at|must stay at|must be|should be|remains? at|equal to)\s*({VALUE})"
FIX_AFTER_VERB = rf"^\s*(?:at|to|=|as|on)\s*({VALUE})"
VERB = r"\b(?:keep|fix|hold|pin|set|leave|freeze|lock)\b[^.;!?\n]*$"
NOT = r"\b(?:not|don't|do not|never|no longer|stop|avoid)\b[^.;!?\n]*$"
# A review note arrives as "A reviewer starred experiment 1:5 (its rationale): the note".
REVIEW = r"^A reviewer (?:starred|rejected) experiment \d+:\d+(?: \(.*?\))?: "


@dataclass(frozen=True)
class Bound:
    """What the notes say about one parameter: a fixed value, or bounds (None: no bound)."""

    fixed: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    said: str = ""  # the note, for the agent's trace


def read(notes: list[str], parameters: list[Parameter]) -> dict[str, Bound]:
    """The bounds the notes put on the parameters, by parameter name."""
    names = _aliases(parameters)
    found: dict[str, Bound] = {}
    for note in notes:
        text = re.sub(REVIEW, "", note.strip(), count=1, flags=re.S)
        # A rejection that names a value ("B3 = 40 was too steep") says what not to do.
        rejected = note.startswith("A reviewer rejected")
        for alias, name in names:
            for m in re.finditer(rf"(?<![\w!.$]){re.escape(alias)}(?![\w.])", text, re.I):
                said = _said(text, m.start(), m.end(), found.get(name, Bound()), rejected)
                if said is not None:
                    found[name] = replace(said, said=note.strip())
    return found


def restrict(parameters: list[Parameter], bounds: dict[str, Bound]) -> tuple[list[Parameter], dict[str, Any], list[str]]:
    """The parameters narrowed by the notes, the values they fix, and what was done (or not) and why."""
    out, fixed, told = [], {}, []
    for p in parameters:
        b = bounds.get(p.name)
        if b is None:
            out.append(p)
            continue
        narrowed, value, why = _apply(p, b)
        if why:
            told.append(f"the note {b.said!r} was not followed: {why}")
            out.append(p)
            continue
        if value is not None:
            fixed[p.name] = value
            told.append(f"{p.name} is kept at {value} (note: {b.said!r})")
        else:
            told.append(f"{p.name} is searched between {_span(narrowed)} (note: {b.said!r})")
        out.append(narrowed)
    return out, fixed, told


# -- reading a note -----------------------------------------------------------------------


def _aliases(parameters: list[Parameter]) -> list[tuple[str, str]]:
    """(alias, name), longest alias first, so "Inputs!B3" is tried before "B3"."""
    out = {}
    leaves: dict[str, list[str]] = {}
    for p in parameters:
        out[p.name] = p.name
        label = getattr(p, "label", None)
        if isinstance(label, str) and label.strip():
            out.setdefault(label.strip(), p.name)
        if "!" in p.name:
            out.setdefault(p.name.rsplit("!", 1)[1], p.name)
        if "." in p.name:
            leaves.setdefault(p.name.rsplit(".", 1)[1], []).append(p.name)
    for leaf, owners in leaves.items():
        if len(owners) == 1:
            out.setdefault(leaf, owners[0])
    return sorted(out.items(), key=lambda kv: -len(kv[0]))


def _said(text: str, start: int, end: int, before: Bound, rejected: bool = False) -> Bound | None:
    after, ahead = text[end:], text[:start]
    if m := re.match(RANGE, after, re.I):
        a, b = sorted((_num(m[1]), _num(m[2])))
        return Bound(low=a, high=b)
    if m := re.match(AT_MOST, after, re.I):
        return replace(before, fixed=None, high=_num(m[1]), high_open=False)
    if m := re.match(AT_LEAST, after, re.I):
        return replace(before, fixed=None, low=_num(m[1]), low_open=False)
    if m := re.match(BELOW, after, re.I):
        return replace(before, fixed=None, high=_num(m[1]), high_open=True)
    if m := re.match(ABOVE, after, re.I):
        return replace(before, fixed=None, low=_num(m[1]), low_open=True)
    if re.search(NOT, ahead, re.I):
        return None
    if re.search(VERB, ahead, re.I) and (m := re.match(FIX_AFTER_VERB, after, re.I)):
        return Bound(fixed=_value(m[1]))
    if not rejected and (m := re.match(FIX, after, re.I)):
        return Bound(fixed=_value(m[1]))
    return None


def _num(s: str) -> float:
    s = s.replace(",", "")
    return float(s[:-1]) / 100 if s.endswith("%") else float(s)


def _value(s: str) -> Any:
    if s[:1] in "\"'":
        return s[1:-1]
    try:
        return _num(s)
    except ValueError:
        return s.rstrip(".")


# -- applying it ----------------------------------------------------------------------------


def _apply(p: Parameter, b: Bound) -> tuple[Parameter, Any, str]:
    """(narrowed parameter, fixed value or None, why it cannot be followed or "")."""
    if p.choices is not None:
        return _apply_choices(p, b)
    if b.fixed is not None:
        if not isinstance(b.fixed, float):
            return p, None, f"{p.name} takes numbers, not {b.fixed!r}"
        value = _snap(p, b.fixed)
        if value is None:
            return p, None, f"{b.fixed:g} is outside {p.name}'s range {_span(p)}"
        return replace(p, min=value, max=value), value, ""
    low, high = p.min, p.max
    if b.low is not None:
        low = max(low, _step_up(p, b.low, b.low_open))
    if b.high is not None:
        high = min(high, _step_down(p, b.high, b.high_open))
    if low > high:
        return p, None, f"no value of {p.name} ({_span(p)}) is in that range"
    if p.step and not p.integer:  # stay on the recipe's step grid
        start = p.min + math.ceil((low - p.min) / p.step - 1e-9) * p.step
        low = float(f"{start:.12g}")
        if low > high + 1e-12:
            return p, None, f"no step of {p.name} is in that range"
    return replace(p, min=low, max=high), None, ""


def _apply_choices(p: Parameter, b: Bound) -> tuple[Parameter, Any, str]:
    if b.fixed is not None:
        match = [c for c in p.choices if str(c).lower() == str(b.fixed).lower()
                 or (isinstance(b.fixed, float) and isinstance(c, (int, float)) and not isinstance(c, bool) and c == b.fixed)]
        if not match:
            return p, None, f"{b.fixed!r} is not one of {p.name}'s choices {list(p.choices)}"
        return replace(p, choices=(match[0],)), match[0], ""
    kept = tuple(c for c in p.choices if isinstance(c, (int, float)) and not isinstance(c, bool) and _inside(c, b))
    if not kept:
        return p, None, f"none of {p.name}'s choices {list(p.choices)} is in that range"
    if len(kept) == 1:
        return replace(p, choices=kept), kept[0], ""
    return replace(p, choices=kept), None, ""


def _inside(v: float, b: Bound) -> bool:
    if b.low is not None and (v < b.low or (b.low_open and v == b.low)):
        return False
    return not (b.high is not None and (v > b.high or (b.high_open and v == b.high)))


def _snap(p: Parameter, v: float) -> float | int | None:
    """The allowed value nearest v, or None when v is outside the range."""
    if not p.min - 1e-9 <= v <= p.max + 1e-9:
        return None
    if p.integer:
        step = int(p.step or 1)
        lo = math.ceil(p.min)
        i = round((v - lo) / step)
        value = lo + i * step
        return value if value <= p.max else value - step
    if p.step:
        i = round((v - p.min) / p.step)
        return float(f"{p.min + i * p.step:.12g}")
    return float(v)


def _step_up(p: Parameter, v: float, strict: bool) -> float:
    if p.integer:
        return math.floor(v) + 1 if strict and v == math.floor(v) else math.ceil(v)
    return v + (p.step or 0) * (1 - 1e-9) if strict and p.step else v


def _step_down(p: Parameter, v: float, strict: bool) -> float:
    if p.integer:
        return math.ceil(v) - 1 if strict and v == math.ceil(v) else math.floor(v)
    return v - (p.step or 0) * (1 - 1e-9) if strict and p.step else v


def _span(p: Parameter) -> str:
    return f"{p.min:g} and {p.max:g}"
