"""What `recipes list`, `show`, `install` and `validate` say about a recipe, read without running any of it.

Everything a recipe wrote (its name, summary, commands, file names, recipe.toml
itself) is passed through `printable`, so what the terminal shows is what is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from overnight.core import recipe as recipe_mod
from overnight.core.errors import OvernightError, RecipeError
from overnight.core.plugins import kinds
from overnight.core.secrets import mask_url

from . import trust
from .library import RECIPE_FILE, Entry, folder_digest, locate, recipe_files
from .printable import printable
from .reach import reach


def describe(path: Path, entry: Entry | None = None) -> dict:
    """One recipe as a row; a recipe that cannot be read says why in `problems`."""
    row = {
        "name": printable(entry.name if entry else path.name), "origin": entry.origin if entry else "folder",
        "path": str(path), "summary": "", "surface": None, "metrics": [], "guards": [], "agent": None,
        "uses_llm": None, "runs_code": None, "trusted": None, "runs": [], "sends_to": [], "reach": [],
        "needs_trust": None, "problems": [],
    }
    try:
        recipe = recipe_mod.load(path, kinds())  # imports only the plugins it names
    except RecipeError as exc:
        row["problems"] = [printable(p) for p in exc.problems]
        return row
    row.update(
        summary=printable(recipe.summary), surface=recipe.surface.cls.name, agent=recipe.agent.cls.name,
        metrics=[p.cls.name for p in recipe.metrics], guards=[p.cls.name for p in recipe.guards],
        uses_llm=recipe.uses_llm(), runs_code=recipe.runs_code(),
        notify=[u for u in recipe.notify.get("urls") or [] if isinstance(u, str)],
    )
    try:
        found = reach(recipe)
        row.update(runs=[printable(line) for line in found.commands], sends_to=found.sends_to(),
                   reach=found.lines(), needs_trust=found.needs_trust)
        if found.needs_trust:
            row["trusted"] = trust.is_trusted(recipe, found)
    except OvernightError as exc:
        row["problems"] = [printable(exc.message)]
    if entry is not None and entry.manifest:
        row["manifest"] = {k: printable(v) if isinstance(v, str) else v for k, v in entry.manifest.items()}
    return row


def problems(ref: str):
    """Every problem a recipe has: first what recipe.toml says, then what its plugins find on building."""
    path, _ = locate(ref)
    try:
        recipe, found = recipe_mod.load(path, kinds()), []
    except RecipeError as exc:  # the sections that could be read are still checked below
        recipe, found = getattr(exc, "recipe", None), [printable(p) for p in exc.problems]
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
            found.append(printable(where.at(part.section, None, exc.message.rstrip("."))))
    return found, recipe


# -- as the command line prints it -------------------------------------------------------


def _yes_no(value) -> str:
    return "?" if value is None else "yes" if value else "no"


def list_lines(rows: list[dict], mask: Callable[[str], str] = mask_url) -> list[str]:
    """`recipes list`: one line a recipe, with what it needs and where it sends data (its
    notification URLs too, through `mask`, as `show_lines` prints them)."""
    out = [f"{'NAME':<16} {'FROM':<10} {'SURFACE / METRIC / AGENT':<34} {'LLM':<4} {'CODE':<5} {'TRUSTED':<8} "
           f"{'SENDS DATA TO':<32} SUMMARY"]
    for r in rows:
        if r["problems"]:
            out.append(f"{r['name']:<16} {r['origin']:<10} cannot be read: {r['problems'][0]}")
            continue
        kinds = f"{r['surface']} / {'+'.join(r['metrics'])} / {r['agent']}"
        trusted = "-" if not r["needs_trust"] else _yes_no(r["trusted"])
        sends = ", ".join(r["sends_to"] + [printable(mask(url)) for url in r.get("notify", [])]) or "-"
        out.append(f"{r['name']:<16} {r['origin']:<10} {kinds:<34} {_yes_no(r['uses_llm']):<4} "
                   f"{_yes_no(r['runs_code']):<5} {trusted:<8} {sends:<32} {r['summary']}")
    return out


def show_lines(ref: str, mask: Callable[[str], str] = mask_url) -> list[str]:
    """`recipes show`: the recipe, its files and its whole reach, as the person reads it before
    trusting. Its notification URLs are data sent out too, shown through `mask` (they hold
    credentials), in the recipe.toml it prints as well."""
    path, entry = locate(ref)
    folder = path if path.is_dir() else path.parent
    info = describe(path, entry)
    out = [f"Recipe   {info['name']} ({info['origin']}, {printable(folder)})"]
    manifest = info.get("manifest")
    if manifest:
        out.append(f"Source   {manifest.get('source')}" + (f" (index {manifest['index']})" if manifest.get("index") else ""))
        out.append(f"Installed {manifest.get('installed_at', '?')}" + (f", commit {manifest['commit']}" if manifest.get("commit") else ""))
        if manifest.get("pinned") is False:
            out.append("Pinned   no: the index gives no sha256, so this is whatever the source served when installed")
    out += [f"Digest   {folder_digest(folder)}", ""]
    file = folder / RECIPE_FILE if path.is_dir() else path
    text = file.read_text(encoding="utf-8", errors="replace").rstrip()
    for url in info.get("notify", []):
        text = text.replace(url, mask(url))
    out += [f"--- {printable(file.name)}", printable(text, newlines=True), "---"]
    out.append("Files:")
    out += [f"  {printable(rel):<40} {(folder / rel).stat().st_size:>10,} bytes" for rel in recipe_files(folder)]
    if info["problems"]:
        return out + ["Problems:"] + [f"  {p}" for p in info["problems"]]
    out.append(f"Needs an LLM: {_yes_no(info['uses_llm'])}")
    if info["runs"]:
        out.append("Runs code:")
        out += [f"  {line}" for line in info["runs"]]
    else:
        out.append("Runs code: no (it reads and writes files only in work folders).")
    sends = [line for line in info["reach"] if ": sends " in line]  # models, clusters and notifications
    out.append("Sends data to:" if sends else "Sends data to: nobody (it calls no model).")
    out += [f"  {line}" for line in sends]
    others = [line for line in info["reach"] if line not in sends and line not in info["runs"]]
    out += [f"Also: {line}" for line in others]
    if info["needs_trust"]:
        state = "trusted here" if info["trusted"] else "not trusted yet: the first run shows all of the above and asks"
        out.append(f"Trust: {state}.")
    else:
        out.append("Trust: not needed (it runs no code, sends nothing and writes nothing outside its folder).")
    return out


def installed_lines(entry: Entry, source: str) -> list[str]:
    """What `recipes install` and `update` print: where it came from, then its whole reach before anything runs."""
    origin = printable(source)
    if entry.manifest.get("index"):
        origin = f"the index '{printable(entry.manifest['index'])}' ({printable(entry.manifest['resolved'])})"
    out = [f"Installed '{printable(entry.name)}' from {origin} into {entry.path}.", f"Digest {entry.manifest['digest']}"]
    if entry.manifest.get("pinned") is False:
        out.append(f"Not pinned: the index gives no sha256 for it, so this is whatever {origin} served just now.")
    if entry.manifest.get("index_copy"):
        out.append(f"The index could not be read; its copy from {entry.manifest['index_copy']} was used.")
    return out + next_steps(entry)


def next_steps(entry: Entry) -> list[str]:
    info = describe(entry.path, entry)
    out = []
    if info["needs_trust"]:
        out.append("Before its first run it asks you to trust all it does beyond its folder:")
        out += [f"  {line}" for line in info["reach"]]
    elif not info["problems"]:
        out.append("It runs no code, sends nothing to models and writes only in work folders.")
    return out + [f"Next: overnight recipes show {printable(entry.name)} | overnight run {printable(entry.name)}"]


def warnings(recipe) -> list[str]:
    """What a valid recipe may still get wrong, by its surface's reckoning (a template's [Name] stand-ins)."""
    try:
        surface = recipe.surface.build(recipe.dir)
        found = surface.warnings() if callable(getattr(surface, "warnings", None)) else []
    except OvernightError:
        return []
    where = recipe_mod.Where(recipe.path, recipe.text)
    return [where.at(recipe.surface.section, None, w.rstrip(".")) for w in found]
