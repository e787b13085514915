"""`overnight demo`: the bundled pricing recipe, run offline in a fresh folder of your own.

The recipe is copied first (bundled recipes are never written), then run like
`overnight run`. The run is recorded in the store of the current folder (or --db),
so `overnight log`, `diff`, `apply` and `tui` work from where the demo was started;
with --dir X it is recorded in X's own store, so they work from X. The demo folder
and the store folder it makes hold a `.gitignore` of `*`: a demo run inside a
checkout leaves nothing for git to show.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from overnight.cli.common import db_option, open_store
from overnight.core.errors import OvernightError

RECIPE = "pricing"
DEFAULT_DIR = "overnight-demo"


@click.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help=f"Where to copy the recipe: a new or empty folder (default: ./{DEFAULT_DIR}, then -2, -3...).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@db_option
def demo(folder, quiet, db):
    """Run the bundled pricing recipe offline, in a fresh folder.

    A small business model in a workbook: price, launch discount and ad spend
    drive demand, revenue, costs and monthly profit. The search agent looks for
    the most profitable mix while the cash at month 12 stays above zero. No LLM,
    no network; 5 to 30 seconds by the machine.
    """
    from overnight.cli.run import Progress, _trust, print_summary
    from overnight.core import recipe as recipes
    from overnight.core.runner import start_run
    from overnight.ops.trust_gate import build

    target = _fresh(folder)
    _copy(_bundled(), target)
    _ignored(target)
    loaded = recipes.load(target)
    if db is None and folder is not None:
        db = target / ".overnight" / "overnight.db"  # with the demo, so `cd DIR && overnight tui` finds it
    store = open_store(db)
    _ignored(store.path.parent)
    _trust(loaded, store, False)  # the bundled recipe runs no code; this only asks if that ever changes
    setup = build(loaded, store, yes=False)
    workbook = _shown(setup.surface.source())
    if not quiet:
        _introduce(setup, target, workbook)
    display = Progress(setup.budget, quiet=quiet)
    try:
        summary = start_run(setup, subscribers=[display])
    finally:
        display.close()
    print_summary(summary)
    _next(summary, store, workbook, target if folder is not None else None)


def _bundled() -> Path:
    from overnight.recipes import folder

    source = folder(RECIPE)
    if source is None:
        raise OvernightError(f"The bundled '{RECIPE}' recipe is missing from this installation of overnight; reinstall it.")
    return source


def _fresh(folder: Path | None) -> Path:
    """The folder to copy into: never one that holds anything."""
    if folder is not None:
        if folder.exists() and any(folder.iterdir()):
            raise OvernightError(f"The folder {folder} is not empty; give --dir a new or empty folder (nothing was written).")
        return folder
    base = Path.cwd() / DEFAULT_DIR
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{DEFAULT_DIR}-{n}")
    return candidate


def _ignored(folder: Path) -> None:
    """A folder git leaves out, itself included, wherever the demo was started."""
    ignore = folder / ".gitignore"
    try:
        if folder.is_dir() and not ignore.exists():
            ignore.write_text("# made by overnight demo: git ignores this folder\n*\n", encoding="utf-8")
    except OSError:
        pass  # only a courtesy to a checkout


def _copy(source: Path, target: Path) -> None:
    try:
        shutil.copytree(source, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".overnight"))
    except OSError as exc:
        raise OvernightError(f"Cannot copy the demo recipe to {target}: {exc}.") from None


def _shown(path: Path) -> str:
    """A path as short as it can be said from here."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _introduce(setup, target: Path, workbook: str) -> None:
    def named(part) -> str:
        ref = getattr(part.metric, "ref", None)
        return f"{part.label} ({ref})" if ref else part.label

    goal = setup.objective.metrics[0]
    word = "highest" if setup.objective.goal == "maximize" else "lowest"
    guards = " and ".join(f"{named(g)} stays >= {g.min:g}" for g in setup.objective.guards if g.min is not None)
    click.echo(f"Copied the bundled '{RECIPE}' recipe to {_shown(target)}/ (your copy; the bundled one is never written).")
    click.echo(f"Goal: the {word} {named(goal)} in {workbook}" + (f", while {guards}." if guards else "."))
    click.echo(f"Agent: {setup.recipe.agent.cls.name}, offline; budget: {setup.budget.experiments} experiments.")


def _next(summary, store, workbook: str, home: Path | None) -> None:
    where = _shown(store.path)
    click.echo("")
    if home is not None and store.path.parent.parent.resolve() == home.resolve() != Path.cwd().resolve():
        workbook = str(Path(workbook).relative_to(_shown(home))) if workbook.startswith(_shown(home)) else workbook
        click.echo(f"The run is stored in {where}; `cd {_shown(home)}` first, then try:")
    else:
        click.echo(f"The run is stored in {where}; from this folder, try:")
    rows = [("overnight log", "every experiment, its status and why")]
    if summary.best_seq:
        exp = f"{summary.run_id}:{summary.best_seq}"
        rows += [(f"overnight diff {exp}", "the cells the best experiment changed"),
                 (f"overnight apply {exp}", f"write them into {workbook} (the old file is kept)")]
    rows.append(("overnight tui", "browse and review the run in the terminal"))
    width = max(len(cmd) for cmd, _ in rows)
    for cmd, what in rows:
        click.echo(f"  {cmd:<{width}}  {what}")
