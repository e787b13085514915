"""What `recipes list`, `show` and `validate` say about a recipe, read without running any of it."""

from __future__ import annotations

from pathlib import Path

from overnight.core import recipe as recipe_mod
from overnight.core.errors import OvernightError, RecipeError

from . import trust
from .library import Entry, locate


def describe(path: Path, entry: Entry | None = None) -> dict:
    """One recipe as a row; a recipe that cannot be read says why in `problems`."""
    row = {
        "name": entry.name if entry else path.name, "origin": entry.origin if entry else "folder",
        "path": str(path), "summary": "", "surface": None, "metrics": [], "guards": [], "agent": None,
        "uses_llm": None, "runs_code": None, "trusted": None, "runs": [], "problems": [],
    }
    try:
        recipe = recipe_mod.load(path)
    except RecipeError as exc:
        row["problems"] = exc.problems
        return row
    row.update(
        summary=recipe.summary, surface=recipe.surface.cls.name, agent=recipe.agent.cls.name,
        metrics=[p.cls.name for p in recipe.metrics], guards=[p.cls.name for p in recipe.guards],
        uses_llm=recipe.uses_llm(), runs_code=recipe.runs_code(),
    )
    if recipe.runs_code():
        try:
            row["runs"] = trust.what_runs(recipe)
            row["trusted"] = trust.is_trusted(recipe)
        except OvernightError as exc:
            row["problems"] = [exc.message]
    if entry is not None and entry.manifest:
        row["manifest"] = entry.manifest
    return row


def problems(ref: str):
    """Every problem a recipe has: first what recipe.toml says, then what its plugins find on building."""
    path, _ = locate(ref)
    try:
        recipe, found = recipe_mod.load(path), []
    except RecipeError as exc:  # the sections that could be read are still checked below
        recipe, found = getattr(exc, "recipe", None), list(exc.problems)
        if recipe is None:
            return found, None
    where = recipe_mod.Where(recipe.path, recipe.text)
    surface = None
    for part in recipe.parts:
        try:
            plugin = part.build(recipe.dir)
            if part is recipe.surface:
                plugin.read()  # a missing or unreadable artifact
                surface = plugin
            elif surface is not None and callable(getattr(plugin, "validate", None)):
                # What `run` would refuse before spending (a workbook cell the engine cannot compute).
                found += [where.at(part.section, None, p.rstrip(".")) for p in plugin.validate(surface)]
        except OvernightError as exc:
            found.append(where.at(part.section, None, exc.message.rstrip(".")))
    return found, recipe


def warnings(recipe) -> list[str]:
    """What a valid recipe may still get wrong, by its surface's reckoning (a template's [Name] stand-ins)."""
    try:
        surface = recipe.surface.build(recipe.dir)
        found = surface.warnings() if callable(getattr(surface, "warnings", None)) else []
    except OvernightError:
        return []
    where = recipe_mod.Where(recipe.path, recipe.text)
    return [where.at(recipe.surface.section, None, w.rstrip(".")) for w in found]
