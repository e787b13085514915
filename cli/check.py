"""`overnight check RECIPE`: audit a recipe's metric before a run spends anything on it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from overnight.cli.common import db_option, open_store
from overnight.core.errors import OvernightError


@click.command()
@click.argument("recipe")
@click.option("--repeats", "-n", type=click.IntRange(min=1), default=None,
              help="Measure the baseline this many times (default: 5 for a noisy metric, 2 for a deterministic one).")
@click.option("--yes", "-y", is_flag=True, help="Trust the recipe's commands and code without asking.")
@db_option
def check(recipe, repeats, yes, db):
    """Audit RECIPE's metric: noise, gameable views, cost; no agent is called.

    Exit code 0 when ready, 1 when risky, 2 when broken, so a script can gate a
    run on it. The result is kept in the store.
    """
    import tempfile

    from overnight.core import recipe as recipes

    store = open_store(db)
    try:
        with tempfile.TemporaryDirectory(prefix="overnight-check-") as scratch:
            loaded = recipes.load(_recipe_path(recipe, Path(scratch)))
            _trust(loaded, store, yes)
            copied = loaded.dir.is_relative_to(Path(scratch).resolve())
            report = run_check(loaded, store, repeats, where=f"the {recipe} recipe, in a throwaway copy" if copied else "")
    except OvernightError as exc:  # nothing could be measured (a missing key or package, an untrusted recipe): broken
        raise OvernightError(exc.message, exit_code=max(exc.exit_code, 2)) from None
    sys.exit(report.exit_code)


def _recipe_path(arg: str, scratch: Path) -> Path:
    """A path as it is; a bundled or installed recipe's name is checked in a throwaway copy (never written)."""
    from overnight.sharing.library import copy_recipe, lookup

    path = Path(arg)
    if path.exists():
        return path
    entry = lookup(arg)
    if entry is None:
        raise OvernightError(f"No recipe at {arg}: it is not a folder or a recipe.toml here, nor a bundled or installed "
                             "recipe (see `overnight recipes list`).")
    return copy_recipe(entry.path, scratch / arg)


def run_check(recipe, store, repeats: int | None = None, where: str = ""):
    """Builds the recipe afresh (its own spend and clock), audits it, prints and records the report."""
    from overnight.core.audit import audit, degenerate_views
    from overnight.core.measure import repeats as how_many
    from overnight.ops.trust_gate import build

    setup = build(recipe, store, with_agent=False, ask=False)  # the caller asked already
    objective = setup.objective
    times = how_many(objective, repeats, check=True)
    views = len(degenerate_views(setup.surface, objective.all_metrics(), setup.surface.read()))
    plan = [f"{times} of the baseline"] + ([f"up to {views} of degenerate views"] if views else [])
    plan += ["1 on holdout"] if objective.has_examples else []
    click.echo(f"Checking '{recipe.name}' ({where or recipe.path}).")
    click.echo("No agent is called: this spends only what its measurements cost (" + ", ".join(plan) + ").")
    report = audit(setup, repeats, say=click.echo)
    store.record_check(recipe.name, recipe.digest, report.verdict, report.to_json())
    print_report(report, setup.budget)
    for line in (setup.llm.price_lines() if setup.llm is not None else []):
        click.echo(f"Price         {line}")
    return report


def print_report(r, budget) -> None:
    from overnight.core.numbers import fmt

    click.echo("")
    if r.mean is not None and len(r.samples) < 2:  # one measurement shows no spread: saying "noise 0" would mislead
        click.echo(f"Baseline      {fmt(r.mean)} ({r.goal}), 1 measurement: its noise is not known (-n 2 or more measures it)")
        click.echo(f"Keep rule     a change must gain more than {fmt(r.bar)} (min_delta {fmt(budget.min_delta)}; "
                   f"k {fmt(budget.k)} x the noise comes on top, once a run measures it)")
    elif r.mean is not None:
        spread = f"spread {fmt(r.noise)} (min {fmt(min(r.samples))}, max {fmt(max(r.samples))})"
        click.echo(f"Baseline      {fmt(r.mean)} ({r.goal}), {len(r.samples)} measurements, {spread}")
        click.echo(f"Keep rule     a change must gain more than {fmt(r.bar)} "
                   f"(the larger of min_delta {fmt(budget.min_delta)} and k {fmt(budget.k)} x noise {fmt(r.noise)})")
        click.echo(f"Measurement   {r.seconds:.2f} s, ${r.usd:.4f}, {r.tokens} tokens each")
    if r.examples:
        click.echo("Examples      " + ", ".join(f"{n} {split}" for split, n in r.examples.items()))
    p = r.projection
    if p.get("measurements"):
        click.echo(f"Whole budget  {p['experiments']} experiments: about {_duration(p['seconds'])} and ${p['usd']:.2f} "
                   f"of measurement ({p['measurements']} measurements; the agent's own time and cost come on top)")
    for probe in r.probes:
        mark = "GAMEABLE: " if probe.verdict == "gameable" else ""
        click.echo(f"Degenerate    {probe.name}: {mark}{probe.note}")
    if r.spent_usd:
        click.echo(f"This check spent ${r.spent_usd:.4f}.")
    if r.mean is not None:
        click.echo("")
    click.echo(f"Verdict: {r.verdict}")
    for problem in r.problems:
        click.echo(f"  - {problem}")
    if r.crash:
        click.echo("  Last lines of its output:")
        for line in r.crash.splitlines():
            click.echo(f"    {line}")
    for note in r.notes:
        click.echo(f"Note: {note}")
    if r.advice:
        click.echo("Advice:")
        for line in r.advice:
            click.echo(f"  - {line}")
    if r.verdict == "ready":
        tried = "no degenerate view beat the baseline" if r.probes else "this surface makes no degenerate views to try"
        click.echo(f"The metric measured steadily and {tried}.")


def offer(recipe, store, yes: bool, quiet: bool = False) -> None:
    """Before a run: the check, when this recipe (as it is now) was never checked."""
    previous = store.latest_check(recipe.name, recipe.digest)
    if previous is not None:
        return
    if yes or not _interactive():
        if not quiet:
            click.echo(f"This recipe was never checked; skipping the check (run `overnight check {_where(recipe)}` to audit its metric).", err=True)
        return
    if not click.confirm("This recipe was never checked. Check its metric first (no agent is called)?", default=True):
        return
    report = run_check(recipe, store)
    click.echo("")
    if report.verdict == "broken":
        raise OvernightError("The check found this recipe broken (see above); fix it before running.", exit_code=2)
    if report.verdict == "risky" and not click.confirm("The check found risks (see above). Start the run anyway?", default=False):
        raise OvernightError("Run cancelled after the check; nothing was run.")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _where(recipe) -> str:
    try:
        return str(recipe.dir.relative_to(Path.cwd()))
    except ValueError:
        return str(recipe.dir)


def _trust(recipe, store, yes: bool) -> None:
    # No fallback: a broken import must stop here, never skip the trust prompt.
    from overnight.sharing.trust import ensure_trusted

    ensure_trusted(recipe, store, yes)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"
