"""The contamination guard of example-based metrics: a prompt must not carry the examples themselves.

A candidate that pastes the examples' inputs or answers into the prompt scores on
those examples and nowhere else; an unattended run would find that long before a
real improvement. So a candidate is refused, unmeasured, when it contains verbatim
(ignoring case and runs of whitespace) the text of more than `TRAIN_ALLOWED` train
examples, or of any holdout example.

What counts as an example's text, so that honest prompts are never refused:
- its inputs (every field but its id and its expected answer), and its expected
  answer, but only texts of at least `MIN_WORDS` words: short ones ("billing",
  "cannot log in", "42") turn up in good prompts by chance;
- never an answer that two or more examples share: that is a label, and a good
  prompt names its labels.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable

MIN_WORDS = 5
TRAIN_ALLOWED = 2  # a couple of worked examples in a prompt is fair; more is a copy of the test


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def needles(examples: Iterable[tuple[Any, str]], expected_field: str, id_field: str) -> list[tuple[str, str, list[str]]]:
    """(id, split, texts to look for) of each example; `examples` are (record, split) pairs."""
    examples = list(examples)
    answers = Counter(_norm(_text(r.fields.get(expected_field))) for r, _ in examples)
    out = []
    for record, split in examples:
        texts = [_norm(_text(v)) for k, v in record.fields.items() if k not in (expected_field, id_field)]
        answer = _norm(_text(record.fields.get(expected_field)))
        if answers[answer] == 1:  # shared answers are labels
            texts.append(answer)
        texts = [t for t in texts if len(t.split()) >= MIN_WORDS]
        ident = record.fields.get(id_field)
        out.append((_text(ident) if ident not in (None, "") else f"line {record.line}", split, texts))
    return out


def reason(view: str, found: list[tuple[str, str, list[str]]]) -> str | None:
    """Why `view` is refused, or None. `found` is what `needles` returned."""
    text = _norm(view)
    train, holdout = [], 0
    for ident, split, texts in found:
        if any(t in text for t in texts):
            if split == "holdout":
                holdout += 1
            else:
                train.append(ident)
    if holdout:
        # Not named: the agent never sees holdout examples, not even which ones they are.
        return (f"it contains, verbatim, the text of {holdout} holdout example{'s' if holdout > 1 else ''} "
                "(kept out of sight so the gain can be checked on them); describe the pattern instead of copying examples")
    if len(train) > TRAIN_ALLOWED:
        shown = ", ".join(train[:5]) + (f" and {len(train) - 5} more" if len(train) > 5 else "")
        return (f"it contains, verbatim, the text of {len(train)} train examples ({shown}), more than the "
                f"{TRAIN_ALLOWED} allowed: a prompt that copies the examples scores on them and nowhere else; "
                "describe the pattern instead")
    return None
