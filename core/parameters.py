"""Typed knobs of a surface: declared in its recipe section, searched by agents.

Every surface with parameters (config keys, spreadsheet cells) declares, checks,
describes and snaps them here, so a recipe's `min`/`max`/`step`/`integer`/`log`/
`choices` mean the same thing, and a model reads the same words, whatever the surface.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .contracts import Parameter
from .options import Option, Schema, check

# The keys every parameter declaration takes; a surface adds its own (the key path, the cell).
KEYS: Schema = {
    "min": Option(float, "the smallest allowed value", default=None),
    "max": Option(float, "the largest allowed value", default=None),
    "step": Option(float, "values move in steps of this size", default=None),
    "integer": Option(bool, "whole numbers only", default=False),
    "log": Option(bool, "searched on a log scale (for rates and sizes)", default=False),
    "choices": Option(list, "the allowed values, for one that is not a number range", default=None),
}


class Invalid(ValueError):
    """A declaration that cannot be used; the message is one sentence, without its place."""


def read(entry: Any, own: Schema, example: str) -> dict[str, Any]:
    """The checked keys of one declaration table: the surface's `own` keys and KEYS."""
    if not isinstance(entry, dict):
        raise Invalid(f"each entry must be a table such as {example}")
    checked = check(entry, {**own, **KEYS})
    if checked.problems:
        raise Invalid(checked.problems[0][1])
    return checked.values


def declare(name: str, values: dict[str, Any]) -> Parameter:
    """The parameter a checked declaration describes; raises Invalid when it cannot be searched."""
    if values.get("choices") is not None:
        if any(values.get(k) is not None for k in ("min", "max", "step")) or values.get("integer") or values.get("log"):
            raise Invalid("give either 'choices' or 'min' and 'max', not both")
        return Parameter(name, choices=_choices(values["choices"]))
    lo, hi, step = values.get("min"), values.get("max"), values.get("step")
    integer, log = bool(values.get("integer")), bool(values.get("log"))
    if lo is None or hi is None:
        raise Invalid("declare 'min' and 'max' (the range the value may take), or 'choices'")
    for key, x in (("min", lo), ("max", hi), ("step", step)):
        if x is not None and not math.isfinite(x):
            raise Invalid(f"'{key}' must be a finite number, not {x!r}")
    if lo > hi:
        raise Invalid(f"'min' ({lo:g}) is larger than 'max' ({hi:g})")
    if step is not None and step <= 0:
        raise Invalid(f"'step' must be above 0, not {step:g}")
    if integer and not all(float(x).is_integer() for x in (lo, hi, step) if x is not None):
        raise Invalid("an integer parameter needs whole numbers for 'min', 'max' and 'step'")
    if log and lo <= 0:
        raise Invalid(f"a log scale needs 'min' above 0, not {lo:g}")
    if log and step is not None and not (integer and step == 1):
        raise Invalid(f"parameter {name!r} cannot have both a step and a log scale; drop one of them")
    if integer:
        lo, hi, step = int(lo), int(hi), None if step is None else int(step)
    return Parameter(name, min=lo, max=hi, step=step, integer=integer, log=log)


def _choices(choices: list) -> tuple:
    if not choices:
        raise Invalid("'choices' is empty; list the values it may take, such as [\"monthly\", \"yearly\"]")
    for c in choices:
        if not isinstance(c, (str, int, float, bool)) or isinstance(c, float) and not math.isfinite(c):
            raise Invalid(f"a choice must be a number, text or true/false, not {c!r}")
    if any(same(a, b) for i, a in enumerate(choices) for b in choices[i + 1:]):
        raise Invalid("'choices' lists the same value twice")
    return tuple(choices)


def describe(p: Parameter) -> str:
    """What a parameter accepts, in the words the rules give a person and a model."""
    if p.choices is not None:
        return "one of " + ", ".join(show(c) for c in p.choices)
    text = f"{'a whole number' if p.integer else 'a number'} from {show(p.min)} to {show(p.max)}"
    if p.step:
        text += f" in steps of {show(p.step)}"
    return text + (" (log scale)" if p.log else "")


def problem(p: Parameter, value: Any) -> str | None:
    """Why a value cannot be this parameter's ("NAME = VALUE is ..."); None when it can."""
    why = _why(p, value)
    return f"{p.name} = {show(value)} {why}" if why else None


def _why(p: Parameter, value: Any) -> str | None:
    if p.choices is not None:
        if any(same(value, c) for c in p.choices):
            return None
        return "is not one of its choices (" + ", ".join(show(c) for c in p.choices) + ")"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "is not a number"
    if not math.isfinite(value):
        return "is not a finite number"
    if value < p.min:
        return f"is below its min {show(p.min)}"
    if value > p.max:
        return f"is above its max {show(p.max)}"
    if p.integer and not float(value).is_integer():
        return "is not a whole number"
    if p.step and not _on_step(p, value):
        return f"is not on its steps of {show(p.step)} from {show(p.min)}"
    return None


def snap(p: Parameter, value: Any) -> Any:
    """A sampler's value as a person would write it: inside the bounds, on the step grid,
    whole for integers, and with no 0.30000000000000004 tails (6 significant digits)."""
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        value = item()
    if p.choices is not None or isinstance(value, (bool, str)):
        return value
    value = min(max(value, p.min), p.max)
    if p.step:
        value = p.min + round((value - p.min) / p.step) * p.step
        if value > p.max + 1e-12 * max(1.0, abs(p.max)):
            value -= p.step
        value = round(value, max(_decimals(p.step), _decimals(p.min)))
    if p.integer:
        return int(round(value))
    value = float(f"{value:.12g}") if p.step else float(f"{value:.6g}")
    return min(max(value, p.min), p.max)


def same(a: Any, b: Any) -> bool:
    """Equal as parameter values: 3 and 3.0 are the same number, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def show(value: Any) -> str:
    """A value as TOML, JSON and the views write it: true, 3, 0.5, "text"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def where(recipe_dir: Path, key: str, index: int | None, name: str | None) -> str:
    """`recipe.toml:LINE: [surface] KEY #N (NAME)`: where a declaration is, for messages."""
    file = recipe_dir / "recipe.toml"
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    needles = [f'"{name}"', f"'{name}'"] if name else []
    line = None
    for needle in needles + [key]:
        pattern = re.escape(needle) if needle != key else rf"^\s*{re.escape(key)}\s*="
        line = next((n for n, text in enumerate(lines, 1) if re.search(pattern, text)), None)
        if line:
            break
    place = f"{file}:{line}" if line else str(file)
    return f"{place}: [surface] {key}" + (f" #{index}" if index else "") + (f" ({name})" if name else "")


def _on_step(p: Parameter, value: float) -> bool:
    k = (value - p.min) / p.step
    return abs(k - round(k)) <= 1e-9 * max(1.0, abs(k))


def _decimals(x: float) -> int:
    """How many decimals a number needs as written: 0.25 -> 2, 1e-05 -> 5."""
    text = repr(float(x))
    if "e" in text:
        mantissa, _, exp = text.partition("e")
        return max(0, len(mantissa.partition(".")[2].rstrip("0")) - int(exp))
    return len(text.partition(".")[2].rstrip("0"))
