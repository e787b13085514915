"""A new recipe.toml, written with tomlkit so every key carries a comment saying what it is."""

from __future__ import annotations

from pathlib import Path

import tomlkit

from overnight.core.budget import SCHEMA as BUDGET_SCHEMA
from overnight.core.errors import OvernightError
from overnight.core.options import Option

PLACEHOLDER = "TODO"
BUDGET_KEYS = ("experiments", "minutes", "usd", "per_experiment_seconds", "parallel", "patience")
BUDGET_START = {"experiments": 50, "minutes": 30, "usd": 0, "per_experiment_seconds": 60, "parallel": 1, "patience": 25}


def new_recipe_file(folder: Path) -> Path:
    """Where `recipes init` writes; checked before anyone is asked anything, and never over a file."""
    target = folder / "recipe.toml"
    if target.exists():
        raise OvernightError(f"{target} already exists: overnight never writes over it (check it with `overnight recipes validate {folder}`).")
    return target


def write(folder: Path, name: str | None, surface, metric, agent) -> Path:
    """Writes a commented recipe.toml for the chosen plugin classes; `name` defaults to the folder's."""
    target = new_recipe_file(folder)
    text = recipe_toml(name or (folder.resolve().name or "my-recipe"), surface, metric, agent)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def recipe_toml(name: str, surface, metric, agent) -> str:
    doc = tomlkit.document()
    doc.add(tomlkit.comment("An overnight recipe: one surface (what may change), one metric (a number"))
    doc.add(tomlkit.comment("with a direction), one budget. Keys marked TODO need a value; commented keys"))
    doc.add(tomlkit.comment("are optional, shown with their defaults. Check it: overnight recipes validate ."))
    doc.add(tomlkit.nl())

    info = tomlkit.table()
    _add(info, "name", name, "unique in the workspace; runs are grouped by it")
    _add(info, "summary", "", "one line on what it improves")
    doc.add("recipe", info)

    doc.add("surface", _section(surface, "the thing that may change"))
    doc.add("metric", _section(metric, "what to measure", {"goal": (metric.goal, "maximize or minimize")}))
    doc.add(tomlkit.comment("Guards must hold for a change to be kept, e.g. [[guards]] kind = \"...\", max = 100"))
    doc.add(tomlkit.nl())
    doc.add("agent", _section(agent, "who proposes changes"))

    budget = tomlkit.table()
    for key in BUDGET_KEYS:
        _add(budget, key, BUDGET_START[key], BUDGET_SCHEMA[key].help)
    doc.add("budget", budget)
    return tomlkit.dumps(doc)


def _section(cls, what: str, shared: dict | None = None):
    table = tomlkit.table()
    table.add(tomlkit.comment(f"{what}: {cls.summary}"))
    table.add("kind", cls.name)
    for key, (value, help) in (shared or {}).items():
        _add(table, key, value, help)
    optional = []
    for key, option in cls.options.items():
        if option.required:
            _add(table, key, _placeholder(option), f"{PLACEHOLDER}: {option.help}" if option.help else PLACEHOLDER)
        else:
            optional.append((key, option))
    for key, option in optional:
        value = tomlkit.item(option.default).as_string() if option.default not in (None, {}, []) else "..."
        table.add(tomlkit.comment(f"{key} = {value}" + (f"  # {option.help}" if option.help else "")))
    table.add(tomlkit.nl())
    return table


def _add(table, key: str, value, comment: str) -> None:
    table.add(key, value)
    item = table[key]
    item.comment(comment)
    item.trivia.comment_ws = "  "


def _placeholder(option: Option):
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    if option.choices:
        return option.choices[0]
    first = types[0]
    return {str: PLACEHOLDER, int: 0, float: 0.0, bool: False, list: [], dict: {}}.get(first, PLACEHOLDER)
