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


def _yes_no(value) -> str:
    return "?" if value is None else "yes" if value else "no"


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json):
    """List the bundled and installed recipes."""
    from overnight.sharing.describe import describe
    from overnight.sharing.library import entries

    rows = [describe(e.path, e) for e in entries()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No recipes found.")
        return
    click.echo(f"{'NAME':<16} {'FROM':<10} {'SURFACE / METRIC / AGENT':<34} {'LLM':<4} {'CODE':<5} {'TRUSTED':<8} SUMMARY")
    for r in rows:
        if r["problems"]:
            click.echo(f"{r['name']:<16} {r['origin']:<10} cannot be read: {r['problems'][0]}")
            continue
        kinds = f"{r['surface']} / {'+'.join(r['metrics'])} / {r['agent']}"
        trusted = "-" if not r["runs_code"] else _yes_no(r["trusted"])
        click.echo(f"{r['name']:<16} {r['origin']:<10} {kinds:<34} {_yes_no(r['uses_llm']):<4} "
                   f"{_yes_no(r['runs_code']):<5} {trusted:<8} {r['summary']}")


@recipes.command()
@click.argument("name")
def show(name):
    """Show a recipe: its recipe.toml, its files, and exactly what it runs."""
    from overnight.sharing.describe import describe
    from overnight.sharing.library import RECIPE_FILE, folder_digest, locate, recipe_files

    path, entry = locate(name)
    folder = path if path.is_dir() else path.parent
    info = describe(path, entry)
    click.echo(f"Recipe   {info['name']} ({info['origin']}, {folder})")
    manifest = info.get("manifest")
    if manifest:
        click.echo(f"Source   {manifest.get('source')}" + (f" (index {manifest['index']})" if manifest.get("index") else ""))
        click.echo(f"Installed {manifest.get('installed_at', '?')}" + (f", commit {manifest['commit']}" if manifest.get("commit") else ""))
    click.echo(f"Digest   {folder_digest(folder)}")
    click.echo("")
    file = folder / RECIPE_FILE if path.is_dir() else path
    click.echo(f"--- {file.name}")
    click.echo(file.read_text(encoding="utf-8", errors="replace").rstrip())
    click.echo("---")
    click.echo("Files:")
    for rel in recipe_files(folder):
        click.echo(f"  {rel:<40} {(folder / rel).stat().st_size:>10,} bytes")
    if info["problems"]:
        click.echo("Problems:")
        for problem in info["problems"]:
            click.echo(f"  {problem}")
        return
    click.echo(f"Needs an LLM: {_yes_no(info['uses_llm'])}")
    if info["runs"]:
        state = "trusted" if info["trusted"] else "not trusted yet: the first run shows this and asks"
        click.echo(f"Runs code ({state}):")
        for line in info["runs"]:
            click.echo(f"  {line}")
    else:
        click.echo("Runs code: no (it reads and writes files only in work folders).")


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

    problems, recipe = find_problems(path)
    if problems:
        count = len(problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} in {path}:", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        click.get_current_context().exit(2)
    kinds = f"surface {recipe.surface.cls.name}, metric {' + '.join(p.cls.name for p in recipe.metrics)}, agent {recipe.agent.cls.name}"
    click.echo(f"{recipe.path} is a valid recipe '{recipe.name}' ({kinds}).")
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

    entry = installer.install(source, sha256, name, force)
    origin = source
    if entry.manifest.get("index"):
        origin = f"the index '{entry.manifest['index']}' ({entry.manifest['resolved']})"
    click.echo(f"Installed '{entry.name}' from {origin} into {entry.path}.")
    click.echo(f"Digest {entry.manifest['digest']}")
    _next_steps(entry)


def _next_steps(entry) -> None:
    from overnight.sharing.describe import describe

    info = describe(entry.path, entry)
    if info["runs"]:
        click.echo("It runs code; its first run shows exactly what and asks you to trust it:")
        for line in info["runs"]:
            click.echo(f"  {line}")
    click.echo(f"Next: overnight recipes show {entry.name} | overnight run {entry.name}")


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

    entry, previous = installer.update(name, sha256)
    digest = entry.manifest["digest"]
    if digest == previous:
        click.echo(f"'{name}' is up to date (digest {digest}).")
    else:
        click.echo(f"Updated '{name}': digest {previous or '?'} -> {digest}.")
        _next_steps(entry)


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
        click.echo(f"Recipe '{recipe.name}' runs no commands or code: there is nothing to trust.")
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
        for entry in r["entries"].values():
            pinned = "pinned" if entry.sha256 else "not pinned"
            click.echo(f"  {entry.name:<20} {pinned:<11} {entry.summary}")


@index.command("remove")
@click.argument("name")
def index_remove(name):
    """Remove an index (recipes installed from it stay)."""
    from overnight.sharing import indexes

    indexes.remove(name)
    click.echo(f"Removed the index '{name}'.")
