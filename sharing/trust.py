"""Trust before anything runs: a recipe that runs commands or Python says exactly what, and a person agrees.

Trust belongs to the person, not to one workspace, so it is kept in the user
data folder (`trust.json`), against a digest of the recipe: recipe.toml, every
file in its folder, and the files it names outside that folder. The surface's
own file is left out, because changing it is what overnight is for (an apply
must not ask again). Any other change asks again.

`--yes` accepts for that one run and records nothing: trust on record is
always a decision someone made while reading what will run.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import click

from overnight.core.errors import OvernightError

from .library import file_digest, home, recipe_files

# Past this many files the folder is a project, not a recipe: only the files it names are digested.
MAX_FILES = 2000


def what_runs(recipe) -> list[str]:
    """One line per command or piece of code the recipe's plugins will run; empty when none."""
    lines = []
    for part in recipe.parts:
        if not part.cls.runs_code:
            continue
        plugin = part.build(recipe.dir)
        described = plugin.describe_code() or [f"code of the recipe, as the {part.cls.name} plugin runs it (it does not say more)"]
        lines += [f"[{part.section.replace('#', ' #')}] {part.cls.name}: {line}" for line in described]
    return lines


def digest(recipe) -> str:
    folder = recipe.dir
    skip = set()
    source = _surface_file(recipe)
    if source is not None and source.is_relative_to(folder.resolve()):
        skip.add(source.relative_to(folder.resolve()).as_posix())
    total = hashlib.sha256(recipe.text.encode("utf-8"))
    files = recipe_files(folder)
    if len(files) > MAX_FILES:
        # recipe.toml at the top of a large project: the files it names stand for the folder.
        files = [p.relative_to(folder.resolve()).as_posix() for _, p in _named(recipe) if p.is_relative_to(folder.resolve())]
    for rel in files:
        if rel not in skip:
            total.update(f"\n{rel}\0{file_digest(folder / rel)}".encode())
    for value, path in _named(recipe):
        if path.is_relative_to(folder.resolve()):
            continue
        total.update(f"\noutside:{value}\0{file_digest(path)}".encode())
    return total.hexdigest()


def _surface_file(recipe) -> Path | None:
    try:
        return recipe.surface.build(recipe.dir).source().resolve()
    except Exception:  # a surface that cannot be built yet fails later with its own message
        path = recipe.surface.options.get("path")
        return (recipe.dir / path).resolve() if isinstance(path, str) else None


def _named(recipe) -> list[tuple[str, Path]]:
    """Files a recipe names in its plugin sections, inside its folder or not (a shared scorer, say)."""
    folder = recipe.dir.resolve()
    found = {}
    for part in recipe.parts:
        for value in _strings(part.options):
            try:
                path = (folder / value).resolve()
                if path.is_file():
                    found[value] = path
            except (OSError, ValueError):
                continue
    return sorted(found.items())


def _strings(value):
    if isinstance(value, str):
        if value and len(value) < 4096 and "\n" not in value:
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


# -- the record ----------------------------------------------------------------


def _file() -> Path:
    return home() / "trust.json"


def _records() -> dict:
    try:
        return json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_trusted(recipe) -> bool:
    return digest(recipe) in _records()


def record(recipe) -> None:
    records = _records()
    records[digest(recipe)] = {"recipe": recipe.name, "path": str(recipe.path), "trusted_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    _file().parent.mkdir(parents=True, exist_ok=True)
    tmp = _file().with_suffix(".tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    tmp.replace(_file())


def _trusted_before(recipe) -> dict | None:
    """An earlier trust of this same recipe file, under another digest: it changed since."""
    for info in _records().values():
        if info.get("path") == str(recipe.path):
            return info
    return None


def _terminal() -> bool:
    return sys.stdin.isatty()


def show(recipe, lines: list[str]) -> None:
    click.echo(f"Recipe '{recipe.name}' ({recipe.dir}) runs code on this machine:", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    click.echo("Each runs in a fresh work folder, with your user's rights: read it before you trust it.", err=True)


def ensure_trusted(recipe, store=None, yes: bool = False) -> None:
    """Returns when the recipe may run; raises OvernightError when it may not.

    `store` is accepted for the run command's sake; trust lives in the user data folder.
    """
    lines = what_runs(recipe)
    if not lines or is_trusted(recipe):
        return
    if yes:
        show(recipe, lines)
        click.echo("Trusted for this run (--yes).", err=True)
        return
    if not _terminal():
        raise OvernightError(
            f"Recipe '{recipe.name}' runs commands or code ({len(lines)} listed by `overnight recipes show {recipe.dir}`) "
            f"and you have not trusted it: run it from a terminal to review and trust it, or pass --yes."
        )
    ask(recipe, lines)


def review(recipe, yes: bool = False) -> list[str]:
    """Trust ahead of a run (`overnight recipes trust`); returns what runs, empty when there is nothing to trust.

    Unlike a run's --yes, a --yes here is the person's decision and is recorded.
    """
    lines = what_runs(recipe)
    if not lines:
        return lines
    if yes:
        show(recipe, lines)
        record(recipe)
        return lines
    if not _terminal():
        raise OvernightError(f"Trusting recipe '{recipe.name}' needs a terminal to ask you; pass --yes to trust it as it is.")
    ask(recipe, lines)
    return lines


def ask(recipe, lines: list[str]) -> None:
    """Shows what will run and records the person's yes; a no stops here with nothing run."""
    before = _trusted_before(recipe)
    if before:
        click.echo(f"This recipe changed since you trusted it on {before.get('trusted_at', 'an earlier day')}.", err=True)
    show(recipe, lines)
    if not click.confirm("Trust this recipe and let it run?", default=False, err=True):
        raise OvernightError(f"Recipe '{recipe.name}' was not trusted: nothing was run.")
    record(recipe)
    click.echo(f"Trusted: '{recipe.name}' will not ask again until it changes.", err=True)
