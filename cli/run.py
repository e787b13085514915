"""`overnight run`: the loop with its progress (cli/progress.py) and one summary at the end."""

from __future__ import annotations

import math
from pathlib import Path

import click

from overnight.cli.common import db_option, open_store
from overnight.cli.progress import Progress
from overnight.core.errors import OvernightError


@click.command()
@click.argument("recipe")
@click.option("--dry-run", is_flag=True, help="Measure the baseline once and print the plan; record nothing.")
@click.option("--resume", is_flag=True, help="Continue the latest unfinished run of this recipe.")
@click.option("--yes", "-y", is_flag=True, help="Trust the recipe's commands and code without asking.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option("--tui", "with_tui", is_flag=True, help="Watch the run in the terminal UI (quitting it stops the run).")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), callback=lambda ctx, param, value: _finite(value),
              help="At most this many minutes in all (caps [budget] minutes).")
@db_option
def run(recipe, dry_run, resume, yes, quiet, db, with_tui, minutes=None):
    """Run RECIPE (a folder with recipe.toml, or the file itself).

    Nothing of yours is written: each experiment is measured in a work folder
    of its own. Ctrl-C stops cleanly; --resume continues.
    """
    import gc

    from overnight.cli import main as program

    if program.owns_process:  # setting up (imports first) makes many objects and frees few: collecting meanwhile is wasted
        gc.disable()
    from overnight.core import recipe as recipes
    from overnight.ops.trust_gate import build

    loaded = recipes.load(_recipe_path(recipe))
    if minutes is not None:  # `overnight night` shares its hours out this way
        from dataclasses import replace

        loaded.budget = replace(loaded.budget, minutes=min(minutes, loaded.budget.minutes or minutes))
    store = open_store(db)
    _trust(loaded, store, yes)
    if not dry_run and not resume:
        from overnight.cli.check import offer

        offer(loaded, store, yes, quiet)  # before build: the check must not eat into the run's clock
    setup = build(loaded, store, yes=yes)
    if not (dry_run or resume or with_tui):
        from overnight.core import ahead

        setup.ahead = ahead.start(setup)  # its command runs while the rest of the run is imported
    if program.owns_process:  # what setting up made lives all night: the run's collections need not walk it
        gc.freeze()
        gc.enable()
    if dry_run:
        return _plan(setup)
    from overnight.core.runner import resumable_run
    from overnight.ops.runs import start_run

    run_id = resumable_run(store, loaded) if resume else None
    if with_tui:
        from overnight.tui.app import run_with_ui

        summary = run_with_ui(setup, run_id, store.path)
        return print_summary(summary, setup.llm) if summary else None
    display = Progress(setup.budget, quiet=quiet, activity=setup.llm.activity if setup.llm is not None else None)
    try:
        summary = start_run(setup, run_id=run_id, subscribers=[display])
    finally:
        display.close()
    print_summary(summary, setup.llm)
    _exit_if_interrupted(summary, recipe)


# Exit codes of a run a signal stopped, as a shell reports a command the signal killed.
SIGNAL_EXITS = {"interrupted by Ctrl-C": 130, "interrupted by SIGTERM": 143}


def _exit_if_interrupted(summary, recipe: str) -> None:
    """A run Ctrl-C or SIGTERM stopped exits 130 or 143 and says how to continue it."""
    code = SIGNAL_EXITS.get((summary.stop_reason or "").split(";")[0].strip()) if summary.status == "stopped" else None
    if code:
        import shlex

        click.echo(f"Resume with: overnight run {shlex.quote(recipe)} --resume")
        raise SystemExit(code)


def _finite(minutes: float | None) -> float | None:
    if minutes is not None and not math.isfinite(minutes):  # FloatRange lets nan and inf through
        raise click.BadParameter(f"{minutes} is not a finite number of minutes.")
    return minutes


def _recipe_path(recipe: str) -> Path:
    # A path runs as it is; a bundled or installed recipe's name is copied into ./NAME first.
    from overnight.sharing.library import recipe_path_for_run

    return recipe_path_for_run(recipe)


def _trust(recipe, store, yes: bool) -> None:
    # No fallback: a broken import must stop here, never skip the trust prompt.
    from overnight.sharing.trust import ensure_trusted

    ensure_trusted(recipe, store, yes)


def _plan(setup) -> None:
    """Prints what a run would do, with the time and cost of one baseline measurement."""
    from overnight.core.contracts import MeasureRequest
    from overnight.core.numbers import fmt
    from overnight.core.measure import sample_now

    r, b = setup.recipe, setup.budget
    click.echo(f"Recipe   {r.name}: {r.summary}" if r.summary else f"Recipe   {r.name}")
    click.echo(f"Surface  {r.surface.cls.name} ({setup.surface.source()})")
    click.echo(f"Metric   {setup.objective.describe()}")
    for g in r.guards:
        bounds = " and ".join(x for x in (f">= {fmt(g.min)}" if g.min is not None else "", f"<= {fmt(g.max)}" if g.max is not None else "") if x)
        click.echo(f"Guard    {g.label} {bounds}")
    click.echo(f"Agent    {r.agent.cls.name}")
    parts = [f"{b.experiments} experiments" if b.experiments is not None else "no experiment cap"]
    if b.minutes is not None:
        parts.append(f"{b.minutes:g} min")
    parts += [f"${b.usd:g}", f"{b.per_experiment_seconds:g} s per experiment", f"{b.parallel} in parallel"]
    click.echo("Budget   " + ", ".join(parts))
    found = sample_now(setup.executor, setup.surface.read(), MeasureRequest(b.per_experiment_seconds))
    if found.capped:
        raise found.capped
    m, seconds = found.last.measurement, found.durations[0]
    if not m.ok:
        tail = "\n".join(m.trace.splitlines()[-20:])
        raise OvernightError(f"The baseline could not be measured ({m.status}): {m.reason}" + (f"\n{tail}" if tail else ""))
    cost, cached = _fresh(setup, m)
    click.echo(f"Baseline {fmt(m.value)} ({setup.objective.goal}), measured in {seconds:.2f} s, ${m.cost_usd:.4f}, {m.tokens} tokens"
               + (f" ({cached} answers came from the cache: afresh, about ${cost:.4f})" if cached else ""))
    for line in (setup.llm.price_lines() if setup.llm is not None else []):
        click.echo(f"Price    {line}")
    for line in (setup.llm.notes() if setup.llm is not None else []):
        click.echo(f"Note     {line}")
    per = seconds * (1 if setup.objective.deterministic else 1.5)
    if b.experiments is not None:
        total = per * b.experiments / b.parallel
        if b.minutes is not None:
            total = min(total, b.minutes * 60)
        click.echo(f"Estimate about {per:.2f} s and ${cost:.4f} of measurement per experiment "
                   f"(plus what the agent spends); the whole budget: about {_duration(total)}, ${cost * b.experiments:.2f}"
                   + (" (the cached answers priced as fresh; their time is not)." if cached else "."))
    click.echo("Dry run: nothing was recorded.")


def _fresh(setup, m) -> tuple[float, int]:
    """A measurement's cost as if no answer came from the cache, and how many did."""
    cached = [c for c in m.llm_calls if c.cached]
    if not cached or setup.llm is None:
        return m.cost_usd, 0
    return m.cost_usd + setup.llm.fresh_cost(cached)[1], len(cached)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _confirmed(label: str, baseline, best, held, goal) -> None:
    """The figures measured again at the end, under the reported ones, columns aligned."""
    from overnight.core.numbers import scores_line

    if baseline is None and best is None:
        return
    mark = {True: "  held", False: "  << did NOT hold"}.get(held, "")
    click.echo(f"{'confirmed: ':>{len(label)}}{scores_line(baseline, best, goal)}{mark}")


def print_summary(s, llm=None) -> None:
    """`llm`: the run's gateway, when it has one: where each price came from, what timed out."""
    from overnight.core.numbers import fmt_apart, scores_line
    from overnight.sharing.printable import one_line, printable

    click.echo(f"Run {s.run_id} of '{one_line(s.recipe)}' {s.status}: {printable(s.stop_reason, newlines=True)}.")
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(s.counts.items()) if status != "baseline")
    click.echo(f"Kept {s.kept} of {s.experiments} experiments ({by_status or 'none'}).")
    if s.baseline is not None:
        where = f", experiment {s.run_id}:{s.best_seq}" if s.best_seq else ""
        click.echo(f"Score ({s.goal}): {scores_line(s.baseline, s.best, s.goal)}{where}.")
        _confirmed(f"Score ({s.goal}): ", s.confirmed_baseline, s.confirmed_best, s.held, s.goal)
    if s.holdout_baseline is not None or s.holdout_best is not None:
        hb, hs = fmt_apart(s.holdout_baseline, s.holdout_best)
        line = f"Holdout: baseline {hb} -> best {hs}."
        if None not in (s.holdout_baseline, s.holdout_best, s.best, s.baseline):
            sign = 1 if s.goal == "maximize" else -1
            if sign * (s.best - s.baseline) > 0 and sign * (s.holdout_best - s.holdout_baseline) < 0:
                line += " Warning: train rose while holdout fell; the gain may not be real."
        click.echo(line)
        _confirmed("Holdout: ", s.confirmed_holdout_baseline, s.confirmed_holdout_best, None, s.goal)
    if s.confirmation and s.held is False:  # the "held" mark says enough when it held
        click.echo(s.confirmation)
    for note in s.notes:
        click.echo(note)
    click.echo(f"Spent {_duration(s.seconds)}, ${s.usd:.4f}, {s.tokens} tokens.")
    for line in (llm.price_lines() if llm is not None else []):
        click.echo(f"Price {line}")
    for line in (llm.notes() if llm is not None else []):
        click.echo(line)
    if s.best_seq:
        click.echo(f"Next: overnight log {s.run_id} | overnight diff {s.run_id}:{s.best_seq} | overnight apply {s.run_id}:{s.best_seq}")
