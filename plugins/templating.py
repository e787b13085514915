"""Templates and record files, shared by the `prompt` and `email` surfaces and the LLM metrics.

Templates are rendered in Jinja2's sandbox: a proposal written by a model is
untrusted text, and a template must not reach Python objects it was not given.
Undefined variables are errors (StrictUndefined), so a missing field shows up
as a problem instead of an empty string in what the task model or a reader sees.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from overnight.core.errors import OvernightError

FORMATS = ("jinja", "text")


@cache
def environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


class TemplateProblem(Exception):
    """A template that cannot be parsed or rendered; the message is one clause, with the line."""


def parse_problem(text: str) -> str | None:
    """Why a Jinja2 template does not parse (with its line), or None."""
    from jinja2 import TemplateSyntaxError

    try:
        environment().parse(text)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def variables(text: str, fmt: str = "jinja") -> set[str]:
    """The names a template reads from its inputs (Jinja2's own globals excluded)."""
    if fmt == "text":
        return set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    from jinja2 import meta

    found = meta.find_undeclared_variables(environment().parse(text))
    return set(found) - set(environment().globals)


def missing_inputs(text: str, inputs: list[str], fmt: str = "jinja") -> list[str]:
    """The declared inputs a template no longer uses."""
    used = variables(text, fmt)
    return [name for name in inputs if name not in used]


def placeholder(name: str, fmt: str = "jinja") -> str:
    return "{" + name + "}" if fmt == "text" else "{{ " + name + " }}"


def render(text: str, values: dict[str, Any], fmt: str = "jinja") -> str:
    """The template filled with `values`; raises TemplateProblem saying what is wrong."""
    if fmt == "text":
        # Only `{name}` of a known value is replaced; other braces (JSON examples in
        # a prompt, say) are left as they are.
        return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}",
                      lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)
    from jinja2 import TemplateError, UndefinedError

    try:
        return environment().from_string(text).render(**values)
    except UndefinedError as exc:
        raise TemplateProblem(f"unresolved placeholder: {_undefined(exc)}") from None
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}: " if line else ""
        raise TemplateProblem(f"{where}{getattr(exc, 'message', None) or exc}") from None
    except Exception as exc:  # a filter given the wrong type, a division by zero...
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None


def _undefined(exc: Exception) -> str:
    message = str(exc)
    m = re.match(r"'([^']+)' is undefined", message)
    return f"'{m.group(1)}' has no value" if m else message


# -- record files (examples, recipients) -----------------------------------------


@dataclass
class Record:
    """One row of a JSONL or CSV file, with the line it starts on (for error messages)."""

    line: int
    fields: dict[str, Any]


def read_records(path: Path, what: str = "rows") -> list[Record]:
    """The rows of a .jsonl or .csv file; a malformed row is an error naming file and line."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv", ".tsv"):
        raise OvernightError(f"{path}: {what} must be in a .jsonl or .csv file.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise OvernightError(f"The {what} file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OvernightError(f"Cannot read {path}: {exc}.") from None
    records = _jsonl(path, text) if suffix in (".jsonl", ".ndjson") else _csv(path, text, "\t" if suffix == ".tsv" else ",")
    if not records:
        raise OvernightError(f"{path} holds no {what}.")
    return records


def _jsonl(path: Path, text: str) -> list[Record]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OvernightError(f"{path}:{number}: this line is not valid JSON ({exc.msg}, column {exc.colno}).") from None
        if not isinstance(item, dict):
            raise OvernightError(f"{path}:{number}: each line must be a JSON object, not {type(item).__name__}.")
        out.append(Record(number, item))
    return out


def _csv(path: Path, text: str, delimiter: str) -> list[Record]:
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    header = reader.fieldnames or []
    if not header:
        return []
    blank = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if blank:
        raise OvernightError(f"{path}:1: column {blank[0]} of the header has no name.")
    out = []
    start = reader.line_num + 1
    for row in reader:
        if None in row:
            raise OvernightError(f"{path}:{start}: this row has {len(header) + len(row[None])} values but the header has {len(header)} columns.")
        if any(value is None for value in row.values()):
            given = sum(value is not None for value in row.values())
            raise OvernightError(f"{path}:{start}: this row has {given} values but the header has {len(header)} columns.")
        if any(value.strip() for value in row.values()):
            out.append(Record(start, dict(row)))
        start = reader.line_num + 1
    return out


def field_text(value: Any) -> str:
    """A field as the text a template or a reader sees (JSON for lists and tables)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
