"""`overnight explain [RUN]`: what each kept change of a run contributes at the end."""

from __future__ import annotations

from pathlib import Path

import click

from overnight.cli.common import db_option, open_store
from overnight.ops.find import find_run
from overnight.sharing.printable import one_line

RATIONALE = 44  # characters of a rationale in the table


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@click.option("--yes", "-y", is_flag=True, help="Trust the recipe's commands and code without asking.")
@db_option
def explain(run_ref, yes, db):
    """Measure the best of RUN (default: the latest) with each kept change left out.

    A change whose absence costs nothing beyond the noise bar is named, so you
    can drop it. The table is kept in the store; the TUI shows it too.
    """
    from overnight.core.explain import chain, explain as measure_contributions
    from overnight.ops.trust_gate import build

    store = open_store(db, create=False)
    run = find_run(store, run_ref)
    changes = chain(store, run)  # missing candidates are an error before anything is measured
    if not changes:
        click.echo(f"Run {run['id']} of '{one_line(run['recipe'])}' kept no change: its best is the baseline, so there is nothing to explain.")
        return
    if store.unwritable:  # its table is stored once measured: say so before measuring, not after
        raise OvernightError(f"Cannot write the store {store.path}: {store.unwritable}; nothing was measured.")
    recipe = _recipe_of(run)
    _trust(recipe, store, yes)
    setup = build(recipe, store, with_agent=False, yes=yes)
    result = measure_contributions(setup, store, run, say=click.echo)
    click.echo("")
    print_table(run, result)


def print_table(run: dict, result) -> None:
    from overnight.core.numbers import fmt

    steps = [r for r in result.rows if r.seq is not None]
    values = [r for r in result.rows if r.seq is None]
    click.echo(f"Run {run['id']} of '{one_line(run['recipe'])}': {len(steps)} kept change{'s' if len(steps) > 1 else ''} from baseline "
               f"{fmt(run['baseline_score'])} to best {fmt(run['best_score'])} ({result.goal}); the best measured again: {fmt(result.best_score)}.")
    click.echo(f"A change contributes when leaving it out costs more than {fmt(result.bar)} (the keep rule's noise bar).")
    click.echo("")
    click.echo(f"{'#':>4}  {'change':<{RATIONALE}}  {'gain then':>10}  {'without it':>10}  {'contribution':>12}")
    for r in steps:
        _row(f"{r.seq:>4}", r)
    if values:
        click.echo("")
        click.echo("Each changed value put back as it was in the baseline, the others left as in the best:")
        for r in values:
            _row("   -", r)
    idle = [r for r in steps if r.verdict.endswith("drop it")]
    if idle:
        names = ", ".join(f"#{r.seq} ({one_line(r.rationale, RATIONALE) if r.rationale else 'no rationale'})" for r in idle)
        click.echo("")
        click.echo(f"{'Change' if len(idle) == 1 else 'Changes'} {names} {'adds' if len(idle) == 1 else 'add'} nothing at the end: "
                   f"the best does as well without {'it' if len(idle) == 1 else 'them'}.")


def _row(label: str, r) -> None:
    from overnight.core.numbers import fmt

    text = one_line(r.rationale, RATIONALE)
    line = f"{label}  {text:<{RATIONALE}}  {_signed(r.gain):>10}  {fmt(r.score_without):>10}  {_signed(r.contribution):>12}"
    verdict = r.verdict.replace("drop it", "keep the baseline's value") if r.seq is None else r.verdict
    click.echo(f"{line}  {verdict}".rstrip())


def _signed(x: float | None) -> str:
    from overnight.core.numbers import fmt

    return "-" if x is None else fmt(x) if x <= 0 else "+" + fmt(x)


def _recipe_of(run: dict):
    """The recipe as it is on disk now (secrets intact); the recorded text when the file is gone."""
    from overnight.core import recipe as recipes

    path = Path(run["recipe_path"])
    if path.exists():
        recipe = recipes.load(path)
        if recipe.digest != run["recipe_digest"]:
            click.echo(f"Note: {path} changed since run {run['id']}; measuring with the recipe as it is now.", err=True)
        return recipe
    return recipes.parse(run["recipe_text"], path)


def _trust(recipe, store, yes: bool) -> None:
    # No fallback: a broken import must stop here, never skip the trust prompt.
    from overnight.sharing.trust import ensure_trusted

    ensure_trusted(recipe, store, yes)
