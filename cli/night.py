"""`overnight night`: several recipes one after another, hands off, and one digest at the end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from overnight.cli.common import db_option, open_store
from overnight.core.errors import OvernightError


# As `overnight run` exits: a shell reports 130 for a command Ctrl-C stopped, 143 for SIGTERM.
SIGNAL_EXITS = {"interrupted by Ctrl-C": 130, "interrupted by SIGTERM": 143}


@click.command()
@click.argument("recipes", nargs=-1)
@click.option("--until", help="End the night by this time of day (HH:MM): the time left is shared among the recipes.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), help="At most this many minutes for each recipe.")
@click.option("--resume", is_flag=True, help="Continue the latest night that did not finish.")
@click.option("--yes", "-y", is_flag=True, help="Trust every recipe's commands and code for this night without asking.")
@db_option
def night(recipes, until, minutes, resume, yes, db):
    """Run RECIPE... one after another, each as `overnight run` would.

    A recipe that fails is recorded and the night goes on. Ctrl-C, SIGTERM or
    even SIGKILL leave a night that `overnight night --resume` continues,
    without running finished recipes again. The night ends with a digest and,
    when matplotlib is installed, a report (`overnight report --night`).
    """
    from overnight.core import settings
    from overnight.night.queue import Night, parse_until
    from overnight.night.state import Nights

    store = open_store(db)
    nights = Nights(store)
    settings.notify()  # broken notification settings are said now, not in the morning
    if resume:
        night_id = _resumed(nights, recipes, until, minutes)
        left = [_load(Path(i.path)) for i in nights.items(night_id) if i.status in ("pending", "running")]
        _store_outside(left, store.path)
        _settle_trust(left, yes)
    else:
        if not recipes:
            raise OvernightError("Name the recipes of the night, e.g. `overnight night pricing loan --until 07:00`, or continue one with --resume.")
        loaded = [_load(_path_for(r)) for r in recipes]
        _distinct(loaded)
        _store_outside(loaded, store.path)
        _settle_trust(loaded, yes)
        night_id = nights.start([(r.name, r.dir) for r in loaded], parse_until(until) if until else None, minutes)
        click.echo(f"Night {night_id}: {', '.join(r.name for r in loaded)}" + (f", until {until}" if until else "") + ".")
    queue = Night(nights, night_id, click.echo, yes=yes)
    status = queue.run()
    _morning(nights, night_id)
    if status == "stopped":
        click.echo("The night stopped; `overnight night --resume` continues it.")
        sys.exit(SIGNAL_EXITS.get(queue.stopping, 130))
    items = nights.items(night_id)
    if items and all(i.status == "failed" for i in items):  # a script that starts the night learns of it too
        click.echo(f"Every recipe of night {night_id} failed: read why above, fix them, and start the night again.", err=True)
        sys.exit(1)


def _path_for(arg: str) -> Path:
    from overnight.sharing.library import recipe_path_for_run

    return recipe_path_for_run(arg)


def _load(path: Path):
    from overnight.core import recipe as recipes

    return recipes.load(path)


def _store_outside(loaded, store: Path) -> None:
    """The night writes its logs and reports beside its store: inside a recipe's folder (but for its
    own `.overnight`), they would change the recipe as it runs, and it would be refused as untrusted."""
    from overnight.core.paths import OWN_FOLDER

    where = store.resolve()
    for r in loaded:
        folder = Path(r.dir).resolve()
        if where.is_relative_to(folder) and not where.is_relative_to(folder / OWN_FOLDER):
            raise OvernightError(
                f"The night's store {store} is inside the folder of recipe '{r.name}' ({r.dir}): the night's logs and "
                f"reports, written beside it, would change the recipe as it runs. Keep the store elsewhere "
                f"(without --db, it is .overnight/overnight.db here); nothing was started.")


def _distinct(loaded) -> None:
    seen: dict[str, Path] = {}
    for r in loaded:
        if r.name in seen:
            raise OvernightError(f"Two recipes of the night are named '{r.name}' ({seen[r.name]} and {r.dir}): "
                                 f"a night runs each recipe once; rename one in its [recipe] name.")
        seen[r.name] = r.dir


def _resumed(nights, recipes, until, minutes) -> int:
    from overnight.core.files import pid_alive
    from overnight.night.queue import parse_until

    if recipes:
        raise OvernightError("--resume continues the night as it was planned: give no recipes with it.")
    row = nights.latest(("running", "stopped"))
    if row is None:
        raise OvernightError(f"There is no unfinished night to resume in {nights.store.path} (see `overnight status`).")
    if row["status"] == "running" and pid_alive(row["pid"]):
        raise OvernightError(f"Night {row['id']} is still running (process {row['pid']}); stop it first (Ctrl-C or kill {row['pid']}) or wait for it.")
    changes = {"status": "running", "pid": os.getpid(), "ended_at": None}
    if until:
        changes["until"] = parse_until(until)
    if minutes:
        changes["minutes"] = minutes
    nights.update(row["id"], **changes)
    left = [i.recipe for i in nights.items(row["id"]) if i.status in ("pending", "running")]
    click.echo(f"Night {row['id']}: resuming with {', '.join(left) or 'nothing left to run'}.")
    return row["id"]


def _settle_trust(loaded, yes: bool) -> None:
    """Once, before the night: nobody is awake to answer a question at 3 am."""
    from overnight.sharing import trust

    untrusted = [(r, trust.what_runs(r)) for r in loaded]
    untrusted = [(r, lines) for r, lines in untrusted if lines and not trust.is_trusted(r)]
    if not untrusted:
        return
    if yes:
        for r, lines in untrusted:
            trust.show(r, lines)
        click.echo("Trusted for this night (--yes).", err=True)
        return
    names = ", ".join(f"'{r.name}'" for r, _ in untrusted)
    if not sys.stdin.isatty():
        first = untrusted[0][0]
        if len(untrusted) == 1:
            raise OvernightError(
                f"Recipe {names} runs commands or code and you have not trusted it: review and trust it with "
                f"`overnight recipes trust {_where(first)}`, or start the night with --yes.")
        raise OvernightError(
            f"Recipes {names} run commands or code and you have not trusted them: review and trust each with "
            f"`overnight recipes trust {_where(first)}` (and so on), or start the night with --yes.")
    for r, lines in untrusted:
        trust.show(r, lines)
    one = len(untrusted) == 1
    if not click.confirm(f"Trust {names} and let {'it' if one else 'them'} run tonight?", default=False, err=True):
        raise OvernightError(f"{'Recipe' if one else 'Recipes'} {names} {'was' if one else 'were'} not trusted: "
                             "the night did not start.")
    for r, _ in untrusted:
        trust.record(r)


def _where(recipe) -> str:
    try:
        return str(recipe.dir.relative_to(Path.cwd()))
    except ValueError:
        return str(recipe.dir)


def _morning(nights, night_id: int) -> None:
    """The digest, the report beside the store, and the notification that carries both."""
    from overnight.core.events import NightFinished
    from overnight.core.plugins import registry
    from overnight.night import digest

    report = _report(nights, night_id)
    text = digest.lines(nights, night_id)
    if report:
        text.append(f"Report: {_short(report)} (open it with `overnight report --night --open`).")
    body = "\n".join(text)
    nights.update(night_id, digest=body, report=str(report) if report else None)
    click.echo("")
    click.echo(body)
    event = NightFinished(0, night_id, body, str(report) if report else None, len(nights.items(night_id)))
    try:
        registry().pm.hook.overnight_event(event=event)
    except Exception as exc:  # a third party's observer: said, never fatal
        click.echo(f"A plugin failed on the night's end: {type(exc).__name__}: {exc}", err=True)


def _report(nights, night_id: int) -> Path | None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # an extra
        click.echo("No report: it needs matplotlib (pip install 'overnight[report]').", err=True)
        return None
    from overnight.night.report import night_report, write

    path = nights.store.path.parent / "reports" / f"night-{night_id}.html"
    return write(night_report(nights, night_id), path)


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
