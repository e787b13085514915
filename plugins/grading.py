"""Asking a judge model for a grade, shared by the `judge` metric and the `dataset` scorer `judge`.

The judge ends its reply with `SCORE: n` (1 to 10) or, comparing two texts,
`WINNER: A`, `WINNER: B` or `WINNER: TIE`; the lines before are its reasons,
which become the feedback the agent reads. A reply without that line is asked
again once, with the problem stated; a second miss is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from overnight.core.contracts import LLMCall
from overnight.core.errors import OvernightError
from overnight.core.paths import named

SCORE = re.compile(r"^\W*score\W*[:=]\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\b", re.IGNORECASE | re.MULTILINE)
WINNER = re.compile(r"^\W*winner\W*[:=]\s*\**\s*(A|B|TIE)\b", re.IGNORECASE | re.MULTILINE)
FEEDBACK_CHARS = 800

SCORE_SYSTEM = (
    "You grade a text against a rubric. Read the rubric, then the text. Reply with your reasons in a few "
    "short lines (what falls short of the rubric, concretely), then a last line of the form 'SCORE: n', "
    "where n is a whole number from 1 (fails the rubric) to 10 (meets every point)."
)
PAIR_SYSTEM = (
    "You compare two versions of a text, A and B, against a rubric. Reply with your reasons in a few short "
    "lines, then a last line 'WINNER: A', 'WINNER: B' or 'WINNER: TIE'. Judge only by the rubric; the order "
    "in which the versions are shown means nothing."
)


class NoGrade(OvernightError):
    """The judge did not give a grade, even when asked again."""

    def __init__(self, message: str, calls: list[LLMCall]):
        super().__init__(message)
        self.calls = calls


@dataclass
class Grade:
    value: float  # a score from 1 to 10, or for a comparison 1 (A), 0 (B), 0.5 (tie)
    reasons: str
    calls: list[LLMCall] = field(default_factory=list)


def read_rubric(value: str, recipe_dir: Path) -> str:
    """`rubric` is either a file of the recipe or the rubric's text itself."""
    text = value.strip()
    if "\n" not in text and text:
        path = named(recipe_dir, text)
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise OvernightError(f"Cannot read the rubric file {path}: {exc}.") from None
        if re.search(r"\.(md|txt|markdown)$", text, re.IGNORECASE):
            raise OvernightError(f"The rubric file {path} does not exist (rubric = {value!r}).")
    if not text:
        raise OvernightError("The rubric is empty: give its text or a file such as rubric.md.")
    return value


def score_messages(rubric: str, text: str, *, about: str = "", expected: str = "", task: str = "", sample: int = 0) -> list[dict]:
    parts = [f"Rubric:\n{rubric.strip()}"]
    if task:
        parts.append(f"The task the text answers:\n{task.strip()}")
    if expected:
        parts.append(f"A reference answer:\n{expected.strip()}")
    parts.append(f"The text to grade{f' ({about})' if about else ''}:\n<<<\n{text.strip()}\n>>>")
    if sample:
        # Each sample is its own question, so the cache keeps them apart.
        parts.append(f"(Independent grading {sample}.)")
    return [{"role": "system", "content": SCORE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def pair_messages(rubric: str, a: str, b: str, *, about: str = "", sample: int = 0) -> list[dict]:
    parts = [f"Rubric:\n{rubric.strip()}"]
    if about:
        parts.append(f"Both versions are for {about}.")
    parts.append(f"Version A:\n<<<\n{a.strip()}\n>>>")
    parts.append(f"Version B:\n<<<\n{b.strip()}\n>>>")
    if sample:
        parts.append(f"(Independent comparison {sample}.)")
    return [{"role": "system", "content": PAIR_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def parse_score(reply: str) -> float | None:
    found = SCORE.findall(reply or "")
    if not found:
        return None
    value = float(found[-1])
    return value if 1 <= value <= 10 else None


def parse_winner(reply: str) -> float | None:
    found = WINNER.findall(reply or "")
    if not found:
        return None
    return {"A": 1.0, "B": 0.0, "TIE": 0.5}[found[-1].upper()]


def reasons_of(reply: str) -> str:
    """The judge's reasons: its reply without the grade line, trimmed."""
    text = WINNER.sub("", SCORE.sub("", reply or "")).strip()
    return text if len(text) <= FEEDBACK_CHARS else text[: FEEDBACK_CHARS - 3] + "..."


def ask(llm, messages: list[dict], *, pairwise: bool, settings: dict, cache: bool, timeout: float | None) -> Grade:
    """One grade from the judge, asking once more when its reply has no grade line.

    `llm` is the calling metric's gateway, its `self.llm`."""
    parse = parse_winner if pairwise else parse_score
    wanted = "'WINNER: A', 'WINNER: B' or 'WINNER: TIE'" if pairwise else "'SCORE: n' with n from 1 to 10"
    calls = []
    reply = llm.complete(role="judge", messages=messages, cache=cache, timeout=timeout, **settings)
    calls.append(reply.call)
    value = parse(reply.text)
    if value is None:
        again = messages + [
            {"role": "assistant", "content": reply.text or ""},
            {"role": "user", "content": f"Your reply has no line {wanted}. Give your reasons again, briefly, and end with that line."},
        ]
        first = reply.text
        reply = llm.complete(role="judge", messages=again, cache=cache, timeout=timeout, **settings)
        calls.append(reply.call)
        value = parse(reply.text)
        if value is None:
            shown = _snippet(reply.text or first)
            cut = (f" (its reply was cut off at max_tokens = {settings.get('max_tokens')}; raise it)"
                   if reply.finish_reason == "length" else "")
            raise NoGrade(f"the judge ({settings.get('model')}) gave no line {wanted}, even when asked again{cut}; "
                          f"it replied: {shown}", calls)
    return Grade(value, reasons_of(reply.text), calls)


def _snippet(text: str) -> str:
    text = " ".join((text or "").split())
    if not text:
        return "nothing"
    return repr(text if len(text) <= 120 else text[:117] + "...")
