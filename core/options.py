"""Option schemas: how a plugin says which keys its recipe section takes.

Kept tiny on purpose: a dict of names to `Option`, checked with errors that name
the key and what was expected, so a third-party plugin needs nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

_TYPE_NAMES = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


@dataclass(frozen=True)
class Option:
    """One key of a recipe section: its type, meaning, default and bounds (`overnight plugins KIND` lists them)."""

    type: type | tuple[type, ...] = str
    help: str = ""
    required: bool = False
    default: Any = None
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None


Schema = dict[str, Option]


def closest(name: str, candidates) -> str | None:
    """The candidate a mistyped name most likely meant ("Did you mean"): asked only on a mistake."""
    import difflib

    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return match[0] if match else None


def expected(option: Option) -> str:
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def check_value(name: str, value: Any, option: Option) -> str | None:
    """Returns a problem sentence, or None when the value fits."""
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = any(
        isinstance(value, t) and not (t in (int, float) and isinstance(value, bool))
        for t in types
    )
    if not ok:
        return f"'{name}' must be {expected(option)}, not {value!r}"
    if isinstance(value, float) and not math.isfinite(value):  # TOML reads nan and inf as floats
        return f"'{name}' must be a finite number, not {value!r}"
    if option.required and isinstance(value, str) and not value.strip():
        return f"'{name}' must not be empty ({option.help or expected(option)})"
    if option.choices is not None and value not in option.choices:
        choices = ", ".join(repr(c) for c in option.choices)
        return f"'{name}' must be one of {choices}, not {value!r}"
    if option.min is not None and isinstance(value, (int, float)) and value < option.min:
        return f"'{name}' must be at least {option.min}, not {value!r}"
    if option.max is not None and isinstance(value, (int, float)) and value > option.max:
        return f"'{name}' must be at most {option.max}, not {value!r}"
    return None


@dataclass
class Checked:
    """A section read against its schema: the values, defaults filled, and every problem found."""

    values: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str | None, str]] = field(default_factory=list)  # (key, sentence)


def check(table: dict[str, Any], schema: Schema, *, ignore: set[str] = frozenset()) -> Checked:
    """Checks one recipe section against a schema; fills defaults. `ignore` names the keys the section
    takes but another schema checks (a plugin section's kind, goal, weight...)."""
    out = Checked()
    for key, value in table.items():
        if key in ignore:
            continue
        if key not in schema:
            hint = closest(key, list(schema) + list(ignore))
            tip = f" (did you mean '{hint}'?)" if hint else ""
            known = ", ".join(sorted({*schema, *ignore})) or "none"  # the keys checked elsewhere are taken too
            out.problems.append((key, f"unknown key '{key}'{tip}; this section takes: {known}"))
            continue
        problem = check_value(key, _plain(value), schema[key])
        if problem:
            out.problems.append((key, problem))
        else:
            out.values[key] = _plain(value)
    for key, option in schema.items():
        if key in out.values or key in table:
            continue
        if option.required:
            out.problems.append((None, f"missing key '{key}' ({option.help or expected(option)})"))
        else:
            out.values[key] = option.default
    return out


def _plain(value: Any) -> Any:
    """tomlkit items to plain Python values."""
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if unwrap else value
