"""How the `dataset` metric scores one answer against what was expected (0 to 1, with a reason).

Every scorer returns a score and, when the answer falls short, feedback in a
sentence the agent can act on ("the answer is 'Billing issue', expected 'billing'").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

SCORERS = ("exact", "contains", "regex", "json_field", "numeric", "judge")
NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")
SHOWN = 80  # characters of an answer quoted in feedback


@dataclass
class Settings:
    case_sensitive: bool = False
    pattern: re.Pattern | None = None  # regex: extracts the part of the answer to compare
    json_field: str = ""  # json_field: the key, dots for nesting
    tolerance: float = 0.0  # numeric: the largest allowed difference


def normalize(text: str, s: Settings) -> str:
    text = " ".join(str(text).split())
    return text if s.case_sensitive else text.casefold()


def score(scorer: str, output: str, expected: str, s: Settings) -> tuple[float, str]:
    """(score, feedback); feedback is empty for a full score."""
    return SCORE_FNS[scorer](output, expected, s)


def exact(output: str, expected: str, s: Settings) -> tuple[float, str]:
    if normalize(output, s) == normalize(expected, s):
        return 1.0, ""
    return 0.0, f"the answer is {_quote(output)}, expected exactly {_quote(expected)}"


def contains(output: str, expected: str, s: Settings) -> tuple[float, str]:
    if normalize(expected, s) in normalize(output, s):
        return 1.0, ""
    return 0.0, f"the answer does not contain {_quote(expected)}"


def regex(output: str, expected: str, s: Settings) -> tuple[float, str]:
    if s.pattern is not None:
        m = s.pattern.search(output)
        if not m:
            return 0.0, f"nothing in the answer matches /{s.pattern.pattern}/"
        found = m.group(1) if m.groups() else m.group(0)
        if normalize(found, s) == normalize(expected, s):
            return 1.0, ""
        return 0.0, f"the answer gives {_quote(found)}, expected {_quote(expected)}"
    # Without `pattern`, the expected value is itself the regex the answer must match.
    flags = 0 if s.case_sensitive else re.IGNORECASE
    try:
        ok = re.search(expected, output, flags) is not None
    except re.error as exc:
        return 0.0, f"the expected value {_quote(expected)} is not a valid regex ({exc})"
    return (1.0, "") if ok else (0.0, f"the answer does not match /{expected}/")


def json_field(output: str, expected: str, s: Settings) -> tuple[float, str]:
    data = _json_in(output)
    if data is None:
        return 0.0, f"the answer is not JSON: {_quote(output)}"
    value = data
    for key in s.json_field.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return 0.0, f"the JSON answer has no field {s.json_field!r}: {_quote(output)}"
    got = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if normalize(got, s) == normalize(expected, s):
        return 1.0, ""
    exp_number, got_number = _number(expected), _number(got)
    if exp_number is not None and got_number is not None and abs(exp_number - got_number) <= s.tolerance:
        return 1.0, ""
    return 0.0, f"{s.json_field} is {_quote(got)}, expected {_quote(expected)}"


def numeric(output: str, expected: str, s: Settings) -> tuple[float, str]:
    want = _number(expected)
    if want is None:
        return 0.0, f"the expected value {_quote(expected)} is not a number"
    if s.pattern is not None:
        m = s.pattern.search(output)
        text = (m.group(1) if m.groups() else m.group(0)) if m else ""
    else:
        found = NUMBER.findall(output)
        text = found[-1] if found else ""  # the last number: models tend to conclude with the answer
    got = _number(text)
    if got is None:
        return 0.0, f"no number in the answer: {_quote(output)}"
    if abs(got - want) <= s.tolerance:
        return 1.0, ""
    return 0.0, f"the answer gives {got:g}, expected {want:g} (off by {abs(got - want):g}; tolerance {s.tolerance:g})"


SCORE_FNS = {"exact": exact, "contains": contains, "regex": regex, "json_field": json_field, "numeric": numeric}


def _json_in(text: str):
    """The JSON value in an answer, also when wrapped in a ``` fence or a sentence."""
    text = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fence:
        text = fence.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        return json.JSONDecoder().raw_decode(text[start:])[0]
    except json.JSONDecodeError:
        return None


def _number(text: str) -> float | None:
    try:
        return float(str(text).strip().replace(",", ""))
    except ValueError:
        return None


def _quote(text: str) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= SHOWN else text[: SHOWN - 3] + "...")
