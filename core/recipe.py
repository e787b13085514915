"""Reading a recipe: recipe.toml and the files it names, checked before anything runs.

Every problem names the file, the line and the key, and what was expected; all
problems are reported at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError

from .budget import SCHEMA as BUDGET_SCHEMA, Budget
from .contracts import Plugin, digest
from .errors import OvernightError, RecipeError
from .options import Option, check, closest
from .settings import NOTIFY_SCHEMA, notify_problems

RECIPE_FILE = "recipe.toml"

SECTIONS = ("recipe", "surface", "metric", "guards", "agent", "budget", "notify")

RECIPE_SCHEMA = {
    "name": Option(str, "a name, unique in the workspace", required=True),
    "summary": Option(str, "one line on what it improves", default=""),
    "version": Option(str, default=""),
    "tags": Option(list, default=[]),
}
# Keys every metric section takes, besides the plugin's own.
METRIC_KEYS = {
    "kind": Option(str, required=True),
    "goal": Option(str, "maximize or minimize", choices=("maximize", "minimize")),
    "weight": Option(float, "its weight in the objective", default=1.0),
    "repeats": Option(int, "how many times the baseline is measured", default=None, min=1),
    "label": Option(str, "a short name for this component", default=""),
    "min_delta": Option(float, default=None, min=0),
    "k": Option(float, default=None, min=0),
}
GUARD_KEYS = {
    "kind": Option(str, required=True),
    "min": Option(float, "the smallest allowed value", default=None),
    "max": Option(float, "the largest allowed value", default=None),
    "label": Option(str, default=""),
}


@dataclass
class Part:
    """A plugin chosen by a recipe section, with its checked options."""

    cls: type[Plugin]
    options: dict[str, Any]
    section: str

    def build(self, recipe_dir: Path) -> Plugin:
        return self.cls(dict(self.options), recipe_dir)


@dataclass
class MetricPart(Part):
    weight: float = 1.0
    goal: str | None = None
    label: str = ""
    repeats: int | None = None


@dataclass
class GuardPart(Part):
    min: float | None = None
    max: float | None = None
    label: str = ""


@dataclass
class Recipe:
    path: Path
    text: str
    name: str
    summary: str
    surface: Part
    metrics: list[MetricPart]
    agent: Part
    budget: Budget
    guards: list[GuardPart] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)  # [notify]: None where the person's config decides

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def digest(self) -> str:
        return digest(self.text)

    @property
    def parts(self) -> list[Part]:
        return [self.surface, *self.metrics, *self.guards, self.agent]

    def runs_code(self) -> bool:
        return any(p.cls.runs_code for p in self.parts)

    def uses_llm(self) -> bool:
        return any(p.cls.uses_llm for p in self.parts)


def find(path: str | Path) -> Path:
    """The recipe.toml that a path names: the file itself or a folder holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / RECIPE_FILE
    if not p.exists():
        raise OvernightError(f"No recipe at {path}: expected a recipe.toml file or a folder holding one.")
    return p


def load(path: str | Path, registry=None) -> Recipe:
    file = find(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OvernightError(f"Cannot read {file}: {exc}.") from None
    return parse(text, file.resolve(), registry)


def parse(text: str, file: Path, registry=None) -> Recipe:
    """A recipe from its text; `file` says where it lives (paths are relative to its folder)."""
    from .plugins import registry as default_registry

    registry = registry or default_registry()
    try:
        doc = tomlkit.parse(text).unwrap()
    except ParseError as exc:
        raise RecipeError(f"{file}:{exc.line}:{exc.col}: this is not valid TOML ({_parse_reason(exc)}).") from None

    where = Where(file, text)
    problems: list[str] = []

    for key in doc:
        if key not in SECTIONS:
            hint = closest(key, SECTIONS)
            tip = f" (did you mean [{hint}]?)" if hint else ""
            problems.append(where.at(key, None, f"unknown section [{key}]{tip}; a recipe has {', '.join('[' + s + ']' for s in SECTIONS)}"))

    info = _section(doc, "recipe", where, problems)
    checked = check(info, RECIPE_SCHEMA)
    problems += [where.at("recipe", k, p) for k, p in checked.problems]
    meta = checked.values

    surface = _part(registry, "surface", "surface", _section(doc, "surface", where, problems), where, problems, {"kind": Option(str, required=True)})

    raw_metrics = doc.get("metric")
    metrics: list[MetricPart] = []
    if raw_metrics is None:
        problems.append(f"{file}: missing section [metric] (what to measure, with a kind such as 'command').")
    else:
        tables = raw_metrics if isinstance(raw_metrics, list) else [raw_metrics]
        for i, table in enumerate(tables):
            section = "metric" if isinstance(raw_metrics, dict) else f"metric#{i + 1}"
            part = _part(registry, "metric", section, table, where, problems, METRIC_KEYS)
            if part:
                shared = part.options.pop("_shared")
                metrics.append(MetricPart(part.cls, part.options, section, weight=shared["weight"],
                                          goal=shared["goal"], label=shared["label"] or part.cls.name,
                                          repeats=shared["repeats"]))
                for key in ("min_delta", "k"):
                    if shared[key] is not None:
                        doc.setdefault("budget", {}).setdefault(key, shared[key])

    guards: list[GuardPart] = []
    raw_guards = doc.get("guards", [])
    if not isinstance(raw_guards, list):
        problems.append(where.at("guards", None, "guards must be written as [[guards]] tables"))
        raw_guards = []
    for i, table in enumerate(raw_guards):
        section = f"guards#{i + 1}"
        part = _part(registry, "metric", section, table, where, problems, GUARD_KEYS)
        if part:
            shared = part.options.pop("_shared")
            if shared["min"] is None and shared["max"] is None:
                problems.append(where.at(section, "kind", "a guard needs 'min' or 'max' (the bounds its value must stay within)"))
            elif shared["min"] is not None and shared["max"] is not None and shared["min"] > shared["max"]:
                problems.append(where.at(section, "min", f"'min' ({shared['min']:g}) is larger than 'max' ({shared['max']:g})"))
            guards.append(GuardPart(part.cls, part.options, section, shared["min"], shared["max"], shared["label"] or part.cls.name))

    _distinct_labels(metrics, "metric", where, problems)
    _distinct_labels(guards, "guard", where, problems)

    agent = _part(registry, "agent", "agent", _section(doc, "agent", where, problems), where, problems, {"kind": Option(str, required=True)})

    budget_table = _section(doc, "budget", where, problems, required=False)
    checked = check(budget_table, BUDGET_SCHEMA)
    problems += [where.at("budget", k, p) for k, p in checked.problems]
    budget = Budget.from_values(checked.values)

    notify = check(_section(doc, "notify", where, problems, required=False), NOTIFY_SCHEMA)
    problems += [where.at("notify", k, p) for k, p in notify.problems + notify_problems(notify.values)]

    if problems:
        raise RecipeError(problems)
    for part in metrics:
        part.options["goal"] = part.goal or part.options.get("goal") or part.cls.goal
    return Recipe(file, text, meta["name"], meta["summary"], surface, metrics, agent, budget, guards, meta, notify.values)


def _section(doc: dict, name: str, where: "Where", problems: list[str], required: bool = True) -> dict:
    value = doc.get(name)
    if value is None:
        if required:
            problems.append(f"{where.file}: missing section [{name}].")
        return {}
    if not isinstance(value, dict):
        problems.append(where.at(name, None, f"[{name}] must be a table"))
        return {}
    return value


def _part(registry, kind: str, section: str, table: dict, where: "Where", problems: list[str], shared: dict) -> Part | None:
    if not table:
        return None
    name = table.get("kind")
    if not isinstance(name, str):
        problems.append(where.at(section, "kind" if "kind" in table else None, f"missing key 'kind' (which {kind} plugin to use)"))
        return None
    try:
        cls = registry.get(kind, name)
    except OvernightError as exc:
        problems.append(where.at(section, "kind", exc.message.rstrip(".")))
        return None
    own = {k: v for k, v in table.items() if k not in shared}
    checked = check(own, cls.options, ignore=set(shared))
    problems += [where.at(section, k, p) for k, p in checked.problems]
    shared_checked = check({k: v for k, v in table.items() if k in shared}, shared)
    problems += [where.at(section, k, p) for k, p in shared_checked.problems]
    for key, option in shared.items():  # a key with a problem still needs a value, so other problems get reported
        shared_checked.values.setdefault(key, option.default)
    options = checked.values
    if kind == "metric":
        options["_shared"] = shared_checked.values
    return Part(cls, options, section)


def _distinct_labels(parts: list, what: str, where: "Where", problems: list[str]) -> None:
    """Components and guards are stored and shown by label: two of one kind get numbered."""
    unlabeled = [p.cls.name for p in parts if p.label == p.cls.name]
    seen: dict[str, int] = {}
    for p in parts:
        name = p.cls.name
        if p.label == name and unlabeled.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            p.label = f"{name} #{seen[name]}"
    labels = [p.label for p in parts]
    for p in parts:
        if labels.count(p.label) > 1:
            problems.append(where.at(p.section, "label", f"the label {p.label!r} names another {what} too; give each its own"))
            break


def _parse_reason(exc: ParseError) -> str:
    return re.sub(r"\s+at line \d+ col \d+$", "", str(exc))


class Where:
    """Finds the line of a key in recipe.toml, for error messages."""

    def __init__(self, file: Path, text: str):
        self.file = file
        self.lines = text.splitlines()

    def line(self, section: str, key: str | None) -> int | None:
        name, _, nth = section.partition("#")
        index = int(nth) if nth else 1
        seen, inside = 0, False
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            header = re.match(r"^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?", stripped)
            if header:
                inside = header.group(1) == name
                if inside:
                    seen += 1
                    inside = seen == index
                    if inside and key is None:
                        return number
                continue
            if inside and key and re.match(rf"^{re.escape(key)}\s*=", stripped):
                return number
        return None

    def at(self, section: str, key: str | None, problem: str) -> str:
        line = self.line(section, key) or self.line(section, None)
        loc = f"{self.file}:{line}" if line else str(self.file)
        label = section.replace("#", " #")
        label = f"[{label}] {key}" if key else f"[{label}]"
        return f"{loc}: {label}: {problem}."
