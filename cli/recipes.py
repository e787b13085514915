"""`overnight recipes`: the bundled library, installs from anywhere, and your own recipes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from overnight.core.errors import OvernightError


@click.group()
def recipes():
    """List, show, use, install and validate recipes.

    A recipe is a folder with recipe.toml and the files it names. Bundled and
    installed recipes are never written: `use` copies one into a folder of
    your own, and `overnight run NAME` does that copy first, into ./NAME.
    """


# -- reading recipes -------------------------------------------------------------


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json):
    """List the bundled and installed recipes."""
    from overnight.plugins.notify import masked
    from overnight.sharing.describe import describe, list_lines
    from overnight.sharing.library import entries

    rows = [describe(e.path, e) for e in entries()]
    if as_json:
        for row in rows:
            row["notify"] = [masked(url) for url in row.get("notify", [])]  # they hold credentials
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No recipes found.")
        return
    for line in list_lines(rows, mask=masked):
        click.echo(line)


@recipes.command()
@click.argument("name")
def show(name):
    """Show a recipe: its recipe.toml, its files, what it runs and where it sends data."""
    from overnight.plugins.notify import masked
    from overnight.sharing.describe import show_lines

    for line in show_lines(name, mask=masked):
        click.echo(line)


@recipes.command()
@click.argument("name")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
def use(name, folder):
    """Copy a bundled or installed recipe into FOLDER (default ./NAME) to make it yours."""
    from overnight.sharing.library import copy_recipe, get

    entry = get(name)
    dest = folder or Path(name)
    copy_recipe(entry.path, dest)
    click.echo(f"Copied the {entry.origin} recipe '{name}' into {dest}. Run it with: overnight run {dest}")


@recipes.command()
@click.argument("path")
def validate(path):
    """Check a recipe and report every problem at once (file, line and key)."""
    from overnight.sharing.describe import problems as find_problems, warnings
    from overnight.sharing.printable import one_line, printable

    problems, recipe = find_problems(path)
    if problems:
        count = len(problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} in {path}:", err=True)
        for problem in problems:
            click.echo(f"  {printable(problem)}", err=True)
        click.get_current_context().exit(2)
    kinds = f"surface {recipe.surface.cls.name}, metric {' + '.join(p.cls.name for p in recipe.metrics)}, agent {recipe.agent.cls.name}"
    click.echo(f"{printable(recipe.path)} is a valid recipe '{one_line(recipe.name)}' ({kinds}).")
    for warning in warnings(recipe):
        click.echo(f"Warning: {warning}", err=True)


@recipes.command()
@click.argument("source")
@click.option("--sha256", help="Refuse the source unless its sha256 is this (an archive's bytes; a folder's or repository's recipe digest).")
@click.option("--name", help="Install under this name (default: the recipe's own name, or its name in the index).")
@click.option("--force", is_flag=True, help="Replace an installed recipe of the same name.")
def install(source, sha256, name, force):
    """Install a recipe from SOURCE, without running anything from it.

    SOURCE is a folder, a .zip or .tar.gz file or https URL, a git URL
    (git+https://host/repo.git[@REF][#subdirectory=PATH]), gh:OWNER/REPO[/SUBFOLDER][@REF],
    or a name from an index (see `overnight recipes index add`).
    """
    from overnight.sharing import install as installer
    from overnight.sharing.describe import installed_lines

    entry = installer.install(source, sha256, name, force)
    for line in installed_lines(entry, source):
        click.echo(line)


@recipes.command()
@click.argument("name")
def remove(name):
    """Remove an installed recipe (copies you made with `use` stay)."""
    from overnight.sharing import install as installer

    path = installer.remove(name)
    click.echo(f"Removed '{name}' ({path}).")


@recipes.command()
@click.argument("name")
@click.option("--sha256", help="The new pinned sha256, when the source changed on purpose.")
def update(name, sha256):
    """Install an installed recipe again from where it came from."""
    from overnight.sharing import install as installer
    from overnight.sharing.describe import next_steps

    entry, previous = installer.update(name, sha256)
    digest = entry.manifest["digest"]
    if digest == previous:
        click.echo(f"'{name}' is up to date (digest {digest}).")
    else:
        click.echo(f"Updated '{name}': digest {previous or '?'} -> {digest}.")
        for line in next_steps(entry):
            click.echo(line)


@recipes.command("trust")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Record the trust without asking.")
def trust_(name, yes):
    """Review what a recipe runs and trust it before its first run."""
    from overnight.core import recipe as recipe_mod
    from overnight.sharing import trust
    from overnight.sharing.library import locate

    path, _ = locate(name)
    recipe = recipe_mod.load(path)
    if not trust.review(recipe, yes):
        click.echo(f"Recipe '{name}' runs no code, sends nothing to models and writes nothing outside its folder: there is nothing to trust.")
    elif yes:
        click.echo(f"Trusted '{name}': it will not ask again until it changes.")


@recipes.command()
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--name", help="The recipe's name (default: the folder's name).")
@click.option("--surface", help="The surface kind (see `overnight plugins`).")
@click.option("--metric", help="The metric kind.")
@click.option("--agent", help="The agent kind.")
def init(folder, name, surface, metric, agent):
    """Start a recipe: write a commented recipe.toml in FOLDER (default here)."""
    from overnight.core.plugins import registry
    from overnight.sharing import scaffold

    scaffold.new_recipe_file(folder)
    reg = registry()
    chosen = {}
    for kind, given in (("surface", surface), ("metric", metric), ("agent", agent)):
        available = sorted(reg.classes[kind])
        if not available:
            raise OvernightError(f"No {kind} plugin is installed (see `overnight plugins`).")
        if given is None:
            for n in available:
                click.echo(f"  {n:<12} {reg.classes[kind][n].summary}")
            given = click.prompt(f"Which {kind}?", type=click.Choice(available), default=available[0])
        chosen[kind] = reg.get(kind, given)
    target = scaffold.write(folder, name, chosen["surface"], chosen["metric"], chosen["agent"])
    click.echo(f"Wrote {target}. Fill in the keys marked TODO, then: overnight recipes validate {folder}")


# -- indexes ----------------------------------------------------------------------


@recipes.group()
def index():
    """Indexes: TOML files mapping recipe names to sources and sha256 digests."""


@index.command("add")
@click.argument("source")
@click.option("--name", help="A name for the index (default: its file name).")
@click.option("--force", is_flag=True, help="Replace an index of the same name.")
def index_add(source, name, force):
    """Add an index by path or https URL."""
    from overnight.sharing import indexes

    added, count = indexes.add(source, name, force)
    click.echo(f"Added the index '{added}' ({count} recipe{'s' if count != 1 else ''}). Install one with: overnight recipes install NAME")


@index.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def index_list(as_json):
    """List the indexes and the recipes each offers."""
    from overnight.sharing import indexes
    from overnight.sharing.printable import printable

    rows = indexes.indexes()
    if as_json:
        click.echo(json.dumps([{**r, "entries": {k: vars(v) for k, v in r["entries"].items()}} for r in rows], indent=2))
        return
    if not rows:
        click.echo("No indexes yet: add one with `overnight recipes index add PATH_OR_URL`.")
        return
    for r in rows:
        click.echo(f"{r['name']}  {r['source']}")
        if r["error"]:
            click.echo(f"  cannot be read: {r['error']}")
        elif r["stale"]:
            click.echo(f"  cannot be read now: showing its copy from {r['stale']}")
        for entry in r["entries"].values():
            pinned = "pinned" if entry.sha256 else "not pinned"
            click.echo(f"  {entry.name:<20} {pinned:<11} {printable(entry.summary)}")


@index.command("remove")
@click.argument("name")
def index_remove(name):
    """Remove an index (recipes installed from it stay)."""
    from overnight.sharing import indexes

    indexes.remove(name)
    click.echo(f"Removed the index '{name}'.")
