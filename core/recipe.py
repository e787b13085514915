"""Reading a recipe: recipe.toml and the files it names, checked before anything runs.

Each section is read by one function into a typed part, and `parse` assembles the
parts into a `Recipe`. Every problem names the file, the line and the key, and what
was expected; all problems are reported at once.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .budget import SCHEMA as BUDGET_SCHEMA, Budget
from .contracts import Goal, Metric, Plugin, digest
from .errors import OvernightError, RecipeError
from .hidden import hidden
from .options import Option, Schema, check, closest
from .settings import NOTIFY_SCHEMA, notify_problems

RECIPE_FILE = "recipe.toml"

SECTIONS = ("recipe", "surface", "metric", "guards", "agent", "budget", "notify", "executor")

RECIPE_SCHEMA = {
    "name": Option(str, "a name, unique in the workspace", required=True),
    "summary": Option(str, "one line on what it improves", default=""),
    "version": Option(str, default=""),
    "tags": Option(list, default=[]),
}
# The keys every plugin section takes, besides the plugin's own.
KIND = {"kind": Option(str, "which plugin this section uses (see `overnight plugins`)", required=True)}
METRIC_KEYS = {
    **KIND,
    "goal": Option(str, "the direction of the score", choices=("maximize", "minimize")),
    "weight": Option(float, "its weight in the objective", default=1.0),
    "repeats": Option(int, "how many times the baseline is measured", default=None, min=1),
    "label": Option(str, "a short name for this component", default=""),
    "min_delta": Option(float, "the smallest gain the keep rule counts (as in [budget])", default=None, min=0),
    "k": Option(float, "a keep must beat the best by k times the noise (as in [budget])", default=None, min=0),
}
GUARD_KEYS = {
    **KIND,
    "min": Option(float, "the smallest allowed value", default=None),
    "max": Option(float, "the largest allowed value", default=None),
    "label": Option(str, "a short name for this guard", default=""),
}


@dataclass
class About:
    """The [recipe] section: what the recipe is called and what it is for."""

    name: str
    summary: str = ""
    version: str = ""
    tags: list = field(default_factory=list)


@dataclass
class Part:
    """A plugin chosen by a recipe section, with its own checked options."""

    cls: type[Plugin]
    options: dict[str, Any]
    section: str

    def build(self, recipe_dir: Path) -> Plugin:
        return self.cls(dict(self.options), recipe_dir)


@dataclass
class MetricPart(Part):
    """A [metric] table: the plugin, and what the recipe says of it as a component."""

    weight: float = 1.0
    goal: Goal = "maximize"  # the recipe's, else the plugin's own
    label: str = ""
    repeats: int | None = None
    # The keep rule's, written beside the metric; [budget] wins when it sets them too.
    min_delta: float | None = None
    k: float | None = None

    def build(self, recipe_dir: Path) -> Metric:
        metric = super().build(recipe_dir)
        metric.goal = self.goal
        return metric


@dataclass
class GuardPart(Part):
    """A [[guards]] table: a metric whose value must stay within bounds for a keep."""

    min: float | None = None
    max: float | None = None
    label: str = ""


@dataclass
class Recipe:
    """A recipe read and checked: its text as read, and each section's part."""

    path: Path
    text: str
    about: About
    surface: Part
    metrics: list[MetricPart]
    agent: Part
    budget: Budget
    guards: list[GuardPart] = field(default_factory=list)
    notify: dict[str, Any] = field(default_factory=dict)  # [notify]: None where the person's config decides
    executor: Part | None = None  # [executor]: where measurements run; None is this machine

    @property
    def name(self) -> str:
        return self.about.name

    @property
    def summary(self) -> str:
        return self.about.summary

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def digest(self) -> str:
        return digest(self.text)

    @property
    def parts(self) -> list[Part]:
        return [p for p in (self.surface, *self.metrics, *self.guards, self.agent) if p is not None]

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


def parse(text: str, file: Path, registry=None, sealed: bool | None = None) -> Recipe:
    """A recipe from its text; `file` says where it lives (paths are relative to its folder).

    `sealed` (installed or bundled; found from the folder when None) keeps even the surface's path inside it."""
    from .plugins import for_run

    read = Reader(_document(text, file), Where(file, text), registry or for_run())
    read.sections()
    about, surface, metrics, guards, agent = read.about(), read.surface(), read.metrics(), read.guards(), read.agent()
    budget, notify, executor = read.budget(metrics), read.notify(), read.executor()
    sealed = paths.sealed(file.parent) if sealed is None else sealed
    read.problems += [read.where.at(s, k, p) for s, k, p in paths.refusals(surface, [*metrics, *guards, agent], file.parent, sealed)]
    if sealed and notify.get("urls"):  # a shared recipe would send your run's news to a host of its author's choosing
        read.problems.append(read.where.at("notify", "urls", "an installed or bundled recipe does not choose where "
                                           "notifications go; your own settings do (overnight config set notify.urls ...)"))
    if read.problems:
        error = RecipeError(read.problems)
        # The sections that could be read, so `recipes validate` checks their files in the same pass.
        sound = read.sound
        error.recipe = Recipe(file, text, about, sound(surface), [m for m in metrics if sound(m)], sound(agent), budget,
                              [g for g in guards if sound(g)], notify, sound(executor))
        raise error
    return Recipe(file, text, about, surface, metrics, agent, budget, guards, notify, executor)


def _document(text: str, file: Path) -> dict:
    """recipe.toml as plain values; the standard parser reads it (tomlkit takes ten times as long),
    and tomlkit says what is wrong with one that cannot be read, line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass
    import tomlkit
    from tomlkit.exceptions import ParseError, TOMLKitError

    try:
        return tomlkit.parse(text).unwrap()
    except ParseError as exc:
        reason = re.sub(r"\s+at line \d+ col \d+$", "", str(exc))
        raise RecipeError(f"{file}:{exc.line}:{exc.col}: this is not valid TOML ({reason}).") from None
    except TOMLKitError as exc:  # a key given twice in one table: tomlkit says which, not where
        raise RecipeError(_twice(text, file, exc)) from None


def _twice(text: str, file: Path, exc: Exception) -> str:
    """One sentence with file:line for a key tomlkit found twice (the standard parser says the line)."""
    key = re.search(r'Key "(.+?)"', str(exc))
    line = None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"line (\d+)", str(err))
        line = found.group(1) if found else None
    what = f"the key '{key.group(1)}' is given twice" if key else f"this is not valid TOML ({exc})"
    return f"{file}:{line}: {what}; keep one of them." if line else f"{file}: {what}; keep one of them."


class Reader:
    """Reads the sections of one recipe document, one method each, gathering every problem."""

    def __init__(self, doc: dict, where: "Where", registry):
        self.doc, self.where, self.registry = doc, where, registry
        self.problems: list[str] = []
        self.faulty: set[str] = set()  # the sections with a problem

    def sound(self, part: Part | None) -> Part | None:
        """The part when its own section had no problem, else None."""
        return part if part is not None and part.section not in self.faulty else None

    def sections(self) -> None:
        """Names no section a recipe does not have."""
        known = ", ".join(f"[{s}]" for s in SECTIONS)
        for key in self.doc:
            if key not in SECTIONS:
                hint = closest(key, SECTIONS)
                tip = f" (did you mean [{hint}]?)" if hint else ""
                self.report(key, None, f"unknown section [{key}]{tip}; a recipe has {known}")

    def about(self) -> About:
        """[recipe]: name, summary, version, tags."""
        table = self.table("recipe")
        v = self.checked("recipe", table, RECIPE_SCHEMA) if table is not None else {}
        name = v.get("name")
        if isinstance(name, str) and not name.isprintable():  # isprintable is stricter: look closer
            found = hidden(name)[:5]
            if found:  # every run, log and prompt shows the name: a terminal would obey its escapes
                self.report("recipe", "name", f"the name holds control or invisible characters ({', '.join(found)}); "
                                              "give it one of letters, digits, spaces and punctuation")
        return About(v.get("name") or "", v.get("summary") or "", v.get("version") or "", list(v.get("tags") or []))

    def notify(self) -> dict[str, Any]:
        """[notify]: where this recipe's news goes, over the person's own settings."""
        table = self.table("notify", required=False)
        values = self.checked("notify", table, NOTIFY_SCHEMA) if table is not None else {}
        self.problems += [self.where.at("notify", k, p) for k, p in notify_problems(values)]
        return values

    def surface(self) -> Part | None:
        """[surface]: the one thing that may change."""
        return self.plugin_section("surface")

    def agent(self) -> Part | None:
        """[agent]: who proposes the changes."""
        return self.plugin_section("agent")

    def executor(self) -> Part | None:
        """[executor]: where measurements run (optional; this machine without it)."""
        table = self.table("executor", required=False)
        found = self.plugin("executor", "executor", table, KIND) if table is not None else None
        return Part(found[0], found[1], "executor") if found else None

    def metrics(self) -> list[MetricPart]:
        """[metric], or several [[metric]] tables that make one weighted objective."""
        raw = self.doc.get("metric")
        if raw is None:
            self.problems.append(f"{self.where.file}: missing section [metric] (what to measure, with a kind such as 'command').")
            return []
        parts = []
        for i, table in enumerate(raw if isinstance(raw, list) else [raw], 1):
            section = f"metric#{i}" if isinstance(raw, list) else "metric"
            found = self.plugin("metric", section, table, METRIC_KEYS)
            if found:
                cls, options, v = found
                parts.append(MetricPart(cls, options, section, weight=v["weight"], goal=v["goal"] or cls.goal,
                                        label=v["label"] or cls.name, repeats=v["repeats"],
                                        min_delta=v["min_delta"], k=v["k"]))
        self.labels(parts, "metric")
        return parts

    def guards(self) -> list[GuardPart]:
        """[[guards]]: metrics that must stay within bounds."""
        raw = self.doc.get("guards", [])
        if not isinstance(raw, list):
            self.report("guards", None, "guards must be written as [[guards]] tables")
            return []
        parts = []
        for i, table in enumerate(raw, 1):
            section = f"guards#{i}"
            found = self.plugin("metric", section, table, GUARD_KEYS)
            if found:
                cls, options, v = found
                if v["min"] is None and v["max"] is None:
                    self.report(section, "kind", "a guard needs 'min' or 'max' (the bounds its value must stay within)")
                elif v["min"] is not None and v["max"] is not None and v["min"] > v["max"]:
                    self.report(section, "min", f"'min' ({v['min']:g}) is larger than 'max' ({v['max']:g})")
                parts.append(GuardPart(cls, options, section, v["min"], v["max"], v["label"] or cls.name))
        self.labels(parts, "guard")
        return parts

    def budget(self, metrics: list[MetricPart]) -> Budget:
        """[budget]; a metric's min_delta and k count where [budget] does not set them."""
        table = self.table("budget", required=False) or {}
        values = self.checked("budget", table, BUDGET_SCHEMA)
        for key in ("min_delta", "k"):
            given = [getattr(m, key) for m in metrics if getattr(m, key) is not None]
            if key not in table and given:
                values[key] = given[0]
        return Budget.from_values(values)

    # -- shared by the sections ------------------------------------------------------

    def report(self, section: str, key: str | None, problem: str) -> None:
        self.faulty.add(section)
        self.problems.append(self.where.at(section, key, problem))

    def table(self, name: str, required: bool = True) -> dict | None:
        """A top-level section's table; None when it is missing or not a table (reported)."""
        value = self.doc.get(name)
        if value is None:
            if required:
                self.problems.append(f"{self.where.file}: missing section [{name}].")
            return None
        if not isinstance(value, dict):
            self.report(name, None, f"[{name}] must be a table")
            return None
        return value

    def checked(self, section: str, table: dict, schema: Schema) -> dict[str, Any]:
        """The table's values by the schema; a key with a problem still gets a value, so later
        checks run and report their own problems too."""
        result = check(table, schema)
        for key, problem in result.problems:
            self.report(section, key, problem)
        return {key: result.values.get(key, option.default) for key, option in schema.items()}

    def plugin_section(self, kind: str) -> Part | None:
        table = self.table(kind)
        found = self.plugin(kind, kind, table, KIND) if table is not None else None
        return Part(found[0], found[1], kind) if found else None

    def plugin(self, kind: str, section: str, table: Any, shared: Schema) -> tuple[type[Plugin], dict, dict] | None:
        """The plugin a section names, its own checked options, and the checked keys that
        every section of this kind shares; None when the plugin cannot be found."""
        if not isinstance(table, dict):
            self.report(section, None, f"each [{section.partition('#')[0]}] must be a table of keys")
            return None
        # The shared keys first: their problems show even when the kind is unknown.
        values = self.checked(section, {k: v for k, v in table.items() if k in shared and k != "kind"},
                              {k: o for k, o in shared.items() if k != "kind"})
        name = table.get("kind")
        if not isinstance(name, str):
            self.report(section, "kind" if "kind" in table else None, f"missing key 'kind' (which {kind} plugin to use)")
            return None
        try:
            cls = self.registry.get(kind, name)
        except OvernightError as exc:
            self.report(section, "kind", exc.message.rstrip("."))
            return None
        own = check({k: v for k, v in table.items() if k not in shared}, cls.options, ignore=set(shared))
        for key, problem in own.problems:
            self.report(section, key, problem)
        return cls, own.values, values

    def labels(self, parts: list, what: str) -> None:
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
                self.report(p.section, "label", f"the label {p.label!r} names another {what} too; give each its own")
                break


class Where:
    """Finds the line of a key in recipe.toml, for error messages."""

    def __init__(self, file: Path, text: str):
        self.file = file
        self.lines = text.splitlines()

    def line(self, section: str, key: str | None) -> int | None:
        name, _, nth = section.partition("#")
        index = int(nth) if nth else 1
        seen, inside, top = 0, False, True
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            header = re.match(r"^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?", stripped)
            if header:
                top, inside = False, header.group(1) == name
                if inside:
                    seen += 1
                    inside = seen == index
                    if inside and key is None:
                        return number
                continue
            if inside and key and re.match(rf"^{re.escape(key)}\s*=", stripped):
                return number
            if top and key is None and re.match(rf"^{re.escape(name)}\s*=", stripped):
                return number  # a section written as a plain key (guards = 3)
        return None

    def at(self, section: str, key: str | None, problem: str) -> str:
        line = self.line(section, key) or self.line(section, None)
        loc = f"{self.file}:{line}" if line else str(self.file)
        label = section.replace("#", " #")
        label = f"[{label}] {key}" if key else f"[{label}]"
        return f"{loc}: {label}: {problem}."
