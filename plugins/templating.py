"""Templates and record files, shared by the `prompt` and `email` surfaces and the LLM metrics.

Templates are rendered in Jinja2's sandbox: a proposal written by a model is
untrusted text, and a template must not reach Python objects it was not given.
Undefined variables are errors (StrictUndefined), so a missing field shows up
as a problem instead of an empty string in what the task model or a reader sees.

The sandbox keeps a template from reaching Python; `Guarded` also keeps it from
exhausting the machine (`{{ 'a' * 3000000000 }}`): repetition, concatenation,
padding, joining and formatting that would make a value over MAX_OUTPUT
characters are refused before they run, every loop and call counts against
MAX_STEPS and the MAX_SECONDS deadline, and the output stops at MAX_OUTPUT.
Each refusal is a TemplateProblem of one clause, as any other template error.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from overnight.core.errors import OvernightError

FORMATS = ("jinja", "text")
# One render: at most this many characters out (and in any value made on the way), this long, this many steps.
MAX_OUTPUT = 1_000_000
MAX_SECONDS = 2.0
MAX_STEPS = 1_000_000
_budget = threading.local()


@cache
def environment():
    from jinja2 import StrictUndefined

    return _guarded_class()(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


@cache
def _guarded_class():
    """The sandbox with limits; built on first use so importing this module never imports jinja2."""
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment, SecurityError
    from jinja2.visitor import NodeTransformer

    def refuse(what: str):
        raise SecurityError(f"{what} would make more than {MAX_OUTPUT:,} characters")

    def tick() -> None:
        budget = getattr(_budget, "current", None)
        if budget is None:
            return
        budget[1] += 1
        if budget[1] > MAX_STEPS:
            raise SecurityError(f"rendering took more than {MAX_STEPS:,} steps")
        if budget[1] % 256 == 0 and time.monotonic() > budget[0]:
            raise SecurityError(f"rendering took longer than {MAX_SECONDS:g} s")

    def counted(iterable):
        for item in iterable:
            tick()
            yield item

    def concat(values):
        total = 0
        for value in values:
            total += len(value)
            if total > MAX_OUTPUT:
                refuse("joining with ~")
        return "".join(values)

    class Guard(NodeTransformer):
        """Loops count their steps; `a ~ b` is joined by a function that checks the length first."""

        def visit_For(self, node):
            self.generic_visit(node)
            node.iter = nodes.Filter(node.iter, "_overnight_counted", [], [], None, None, lineno=node.lineno)
            return node

        def visit_Concat(self, node):
            self.generic_visit(node)
            items = nodes.List([nodes.Filter(n, "string", [], [], None, None, lineno=node.lineno) for n in node.nodes],
                               lineno=node.lineno)
            return nodes.Filter(items, "_overnight_concat", [], [], None, None, lineno=node.lineno)

    class Guarded(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.filters = {name: _guard_filter(name, f, refuse, tick) for name, f in self.filters.items()}
            self.filters["_overnight_counted"] = counted
            self.filters["_overnight_concat"] = concat

        def _parse(self, source, name, filename):
            return Guard().visit(super()._parse(source, name, filename))

        def call_binop(self, context, operator, left, right):
            tick()
            _check_binop(operator, left, right, refuse)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja2's own signature)
            tick()
            _check_method(__obj, [*args, *kwargs.values()], refuse)
            return _sized(SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs), refuse)

        def wrap_str_format(self, value):
            # str.format is wrapped at attribute access, so its widths are checked here, at the call.
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None
            owner = value.__self__

            def checked(*args, **kwargs):
                tick()
                fed = [*args, *kwargs.values(), *(args[0].values() if args and isinstance(args[0], dict) else ())]
                _check_format(owner, fed, refuse)
                return _sized(wrapped(*args, **kwargs), refuse)

            return checked

    return Guarded


def _length(value) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple, bytes)) else None


def _sized(value, refuse):
    if (_length(value) or 0) > MAX_OUTPUT:
        refuse("a value")
    return value


def _check_binop(operator: str, left, right, refuse) -> None:
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if _length(seq) is not None and isinstance(n, int) and _length(seq) * n > MAX_OUTPUT:
                refuse("repeating a value")
    elif operator == "+" and _length(left) is not None and _length(right) is not None:
        if _length(left) + _length(right) > MAX_OUTPUT:
            refuse("adding two values")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
        if right > 0 and right * abs(left).bit_length() > 64 * MAX_OUTPUT:
            refuse("a power")
    elif operator == "%" and isinstance(left, str):
        _check_format(left, right if isinstance(right, (tuple, list)) else (right,), refuse)


_WIDTHS = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?|\{[^{}]*?:[^{}]*?(\d+)")


def _check_format(text: str, args, refuse) -> None:
    """Widths in a %- or {}-format string, and numbers fed to a `*` or nested `{}` width."""
    specs = "".join(m.group(0) for m in _WIDTHS.finditer(text))
    if re.search(r"\d{7,}", specs):
        refuse("formatting")
    fed_width = "*" in specs or re.search(r"\{[^{}]*:[^{}]*\{", text)
    if fed_width and any(isinstance(a, int) and a > MAX_OUTPUT for a in args):
        refuse("formatting")


# str methods that make more text than they are given: what each would make.
_GROWERS = {
    "ljust": lambda s, a: a[0] if a else 0, "rjust": lambda s, a: a[0] if a else 0,
    "center": lambda s, a: a[0] if a else 0, "zfill": lambda s, a: a[0] if a else 0,
    "expandtabs": lambda s, a: s.count("\t") * (a[0] if a else 8) + len(s),
    "replace": lambda s, a: len(s) + (s.count(a[0]) + (1 if a[0] == "" else 0)) * len(a[1]) if len(a) >= 2 else 0,
    "join": lambda s, a: len(s) * len(a[0]) + sum(map(len, a[0])) if a and isinstance(a[0], (list, tuple)) else 0,
}


def _check_method(obj, args, refuse) -> None:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str):
        if name in ("format", "format_map"):
            _check_format(owner, args, refuse)
        grow = _GROWERS.get(name)
        try:
            size = grow(owner, args) if grow else 0
        except (TypeError, ValueError, AttributeError):
            size = 0
        if isinstance(size, int) and size > MAX_OUTPUT:
            refuse(f"str.{name}")
    elif name == "generate_lorem_ipsum" and any(isinstance(a, int) and a > 1000 for a in args):
        refuse("lipsum")


# Filters whose arguments set how much they make: width, count, how many slices.
_FILTER_SIZES = {
    "center": lambda v, a, k: a[0] if a else k.get("width", 0),
    "wordwrap": lambda v, a, k: 0,
    "indent": lambda v, a, k: _indent_size(str(v), a[0] if a else k.get("width", 4)),
    "slice": lambda v, a, k: a[0] if a else 0,
    "batch": lambda v, a, k: (_length(v) or 0) if a and a[0] == 0 else 0,
    "join": lambda v, a, k: len(v) * len(str(a[0] if a else k.get("d", ""))) if hasattr(v, "__len__") else 0,
    "replace": lambda v, a, k: len(str(v)) + (str(v).count(str(a[0])) + 1) * len(str(a[1])) if len(a) >= 2 else 0,
    "truncate": lambda v, a, k: 0,
}


def _indent_size(text: str, width) -> int:
    # jinja2 builds the indentation first (" " * width), whatever the text holds.
    each = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return max(each, len(text) + (text.count("\n") + 1) * each)


def _guard_filter(name, function, refuse, tick):
    import functools

    size = _FILTER_SIZES.get(name)

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        tick()
        values = [a for a in args if not _is_context(a)]
        if size is not None and values:
            try:
                made = size(values[0], values[1:], kwargs)
            except (TypeError, ValueError, AttributeError):
                made = 0
            if isinstance(made, int) and made > MAX_OUTPUT:
                refuse(f"the filter {name}")
        if name == "format" and values and isinstance(values[0], str):
            _check_format(values[0], values[1:], refuse)
        return _sized(function(*args, **kwargs), refuse)

    return guarded


def _is_context(value) -> bool:
    return type(value).__name__ in ("Context", "EvalContext", "Guarded")


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
        out = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}",
                     lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)
        if len(out) > MAX_OUTPUT:
            raise TemplateProblem(f"it renders to more than {MAX_OUTPUT:,} characters")
        return out
    from jinja2 import TemplateError, UndefinedError

    _budget.current = [time.monotonic() + MAX_SECONDS, 0]
    try:
        return _bounded(environment().from_string(text).generate(**values))
    except UndefinedError as exc:
        raise TemplateProblem(f"unresolved placeholder: {_undefined(exc)}") from None
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}: " if line else ""
        raise TemplateProblem(f"{where}{getattr(exc, 'message', None) or exc}") from None
    except TemplateProblem:
        raise
    except MemoryError:
        raise TemplateProblem("rendering ran out of memory") from None
    except Exception as exc:  # a filter given the wrong type, a division by zero...
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
    finally:
        _budget.current = None


def _bounded(chunks) -> str:
    """The output, piece by piece, within MAX_OUTPUT characters and MAX_SECONDS."""
    out, size = [], 0
    deadline = _budget.current[0]
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateProblem(f"it renders to more than {MAX_OUTPUT:,} characters")
        if time.monotonic() > deadline:
            raise TemplateProblem(f"rendering took longer than {MAX_SECONDS:g} s")
        out.append(chunk)
    return "".join(out)


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
