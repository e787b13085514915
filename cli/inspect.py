"""Reading the store back: status, log, show, diff, export."""

from __future__ import annotations

import csv
import json

import click

from overnight.cli.common import check_output, db_option, open_store
from overnight.core.errors import OvernightError
from overnight.core.numbers import fmt, gain, signed
from overnight.ops.find import ELSEWHERE, baseline_of, find_experiment, find_run, surface_of, view_of
from overnight.sharing.printable import one_line, printable

# Experiments named as people type them (run, seq, "1:70"); "change" is the raw score minus the
# baseline's, "gain" the same positive when better for the goal; times in ISO 8601.
LEDGER = ("experiment", "run", "seq", "status", "score", "change", "gain", "holdout_score", "reason", "rationale",
          "candidate", "started_at", "seconds", "cost_usd", "tokens")
# What the ledger reads of each experiment, in the store's own names.
COLUMNS = ("run_id", "seq", "status", "score", "delta", "holdout_score", "reason", "rationale", "candidate",
           "started_at", "seconds", "cost_usd", "tokens")
# `log` shows a long run's last experiments; --all lists every one (streamed, however many).
PAGE = 1000
# The TSV columns a person or a model writes: a spreadsheet would run one that starts like a formula.
FREE_TEXT = ("reason", "rationale")
FORMULA = ("=", "+", "-", "@")
RUN_KEYS = ("run", "recipe", "status", "stop_reason", "goal", "best_experiment", "baseline_score", "best_score",
            "holdout_baseline", "holdout_best", "experiments", "usd", "tokens", "seconds", "started_at", "ended_at")


def iso(stamp: float | None) -> str | None:
    """A stored Unix time as ISO 8601 with its offset."""
    import datetime as dt

    return None if not stamp else dt.datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def ledger_row(r: dict, goal: str | None) -> dict:
    change = r["delta"]
    return {"experiment": f"{r['run_id']}:{r['seq']}", "run": r["run_id"], "seq": r["seq"], "status": r["status"],
            "score": r["score"], "change": change, "gain": None if change is None else gain(change, 0.0, goal) + 0.0,
            "holdout_score": r["holdout_score"], "reason": r["reason"], "rationale": r["rationale"],
            "candidate": r["candidate"], "started_at": iso(r.get("started_at")), "seconds": r["seconds"],
            "cost_usd": r["cost_usd"], "tokens": r["tokens"]}


def run_row(store, r: dict) -> dict:
    best = store.experiment(r["best_experiment"]) if r.get("best_experiment") else None
    out = {k: r.get(k) for k in RUN_KEYS}
    out.update(run=r["id"], best_experiment=f"{r['id']}:{best['seq']}" if best else None,
               started_at=iso(r.get("started_at")), ended_at=iso(r.get("ended_at")))
    return out


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def status(as_json, db):
    """Show the runs in this workspace, newest first."""
    from overnight.core.state import died, resume_command
    from overnight.core.store import default_path

    path = db or default_path()
    if not path.exists():  # a read-only command creates nothing
        click.echo("[]" if as_json else f"No runs in {path} yet. {ELSEWHERE}")
        return
    store = open_store(db, create=False)
    from overnight.ops.apply import recover

    for sentence in recover(store):  # an apply a kill interrupted is finished or rolled back
        click.echo(sentence, err=True)
    runs = store.runs_overview()
    if as_json:
        click.echo(json.dumps([{**run_row(store, r), **({"status": "died"} if died(r) else {})} for r in runs], indent=2))
        return
    from overnight.night.digest import status_lines

    for line in status_lines(store):  # the latest night, when there is one
        click.echo(line)
    if not runs:
        click.echo(f"No runs in {store.path} yet. {ELSEWHERE}")
        return
    from overnight.core.state import died, resume_command

    click.echo(f"{'run':>4}  {'recipe':<16} {'status':<9} {'exps':>5}  {'baseline':>10} -> {'best':<10}  stop reason")
    for r in runs:
        stop = f"resume with: {resume_command(r)}" if died(r) else one_line(_first_line(r['stop_reason']))
        click.echo(f"{r['id']:>4}  {one_line(r['recipe'], 16):<16} {'died' if died(r) else r['status']:<9} {r['experiments'] or 0:>5}  "
                   f"{fmt(r['baseline_score']):>10} -> {fmt(r['best_score']):<10}  {stop}")


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.option("--all", "every", is_flag=True, help=f"Every experiment (a longer run shows its last {PAGE:,}).")
@click.option("--last", type=click.IntRange(min=1), default=PAGE, show_default=True, metavar="N",
              help="Show the last N experiments.")
@db_option
def log(run_ref, as_json, every, last, db):
    """List the experiments of RUN (default: the latest run)."""
    if every and click.get_current_context().get_parameter_source("last").name == "COMMANDLINE":
        raise click.UsageError("--all lists every experiment and --last N the last N: give one of them.")
    store = open_store(db, create=False)
    run = find_run(store, run_ref)
    columns = COLUMNS if as_json else ("seq", "status", "score", "delta", "reason", "rationale")
    if every:
        rows, earlier = store.experiment_rows(run["id"], columns), 0
    else:
        last = min(last, 2 ** 62)  # more than any store holds, and within SQLite's integers
        rows = list(store.experiment_rows(run["id"], columns, last=last))
        earlier = store.experiment_count(run["id"]) - len(rows) if len(rows) == last else 0
    more = f"{earlier:,} earlier experiment{'s are' if earlier > 1 else ' is'} not shown: add --all to list every one."
    if as_json:
        if earlier:
            click.echo(more, err=True)
        for r in rows:
            click.echo(json.dumps(ledger_row(r, run["goal"])))
        return
    from overnight.core.state import shown_status

    click.echo(f"Run {run['id']} of '{one_line(run['recipe'])}' ({shown_status(run)}{': ' + one_line(_first_line(run['stop_reason'])) if run['stop_reason'] else ''})")
    if earlier:
        click.echo(more)
    click.echo(f"{'#':>4}  {'status':<12} {'score':>10} {'vs baseline':>11}  rationale -- reason (against the best so far)")
    for r in rows:
        text = r["reason"] or ""
        if r["rationale"] and r["status"] != "baseline":
            text = f"{r['rationale']} -- {text}"
        g = None if r["delta"] is None else gain(r["delta"], 0.0, run["goal"]) + 0.0
        click.echo(f"{r['seq']:>4}  {r['status']:<12} {fmt(r['score']):>10} {signed(g):>11}  {one_line(text)}")


@click.command()
@click.argument("exp")
@click.option("--frontier", is_flag=True, help="Also print the run's frontier: which candidates lead on which train examples.")
@db_option
def show(exp, db, frontier):
    """Show experiment EXP (SEQ in the latest run, or RUN:SEQ)."""
    from overnight.plugins.frontier import lineage

    store = open_store(db, create=False)
    run, e = find_experiment(store, exp)
    click.echo(f"Experiment {run['id']}:{e['seq']} of '{one_line(run['recipe'])}'")
    click.echo(f"  status     {e['status']}: {_block(e['reason'])}")
    made = lineage(json.loads(e["meta"]) if e["meta"] else None)
    if made:
        click.echo(f"  made from  {made}")
    click.echo(f"  score      {fmt(e['score'])}" + (f" (samples {', '.join(fmt(s) for s in json.loads(e['samples']))})" if e["samples"] and len(json.loads(e["samples"])) > 1 else ""))
    if e["holdout_score"] is not None:
        click.echo(f"  holdout    {fmt(e['holdout_score'])}")
    if e["components"] and json.loads(e["components"]):
        click.echo("  components " + ", ".join(f"{one_line(k)} {fmt(v)}" for k, v in json.loads(e["components"]).items()))
    g = None if e["delta"] is None else gain(e["delta"], 0.0, run["goal"]) + 0.0
    click.echo(f"  gain       {signed(g)} against the baseline (positive is better for the goal)")
    click.echo(f"  rationale  {_block(e['rationale'] or '')}")
    click.echo(f"  time       {e['seconds'] or 0:.2f} s, ${e['cost_usd'] or 0:.4f}, {e['tokens'] or 0} tokens")
    examples = store.example_results(e["id"])
    if examples:
        failing = [x for x in examples if x["score"] < 1]
        click.echo(f"  examples   {len(examples) - len(failing)} of {len(examples)} passed")
        for x in failing[:10]:
            click.echo(f"    [{one_line(x['split'])}] {one_line(x['example_id'])}: got {x['output'][:60]!r}, "
                       f"expected {x['expected'][:60]!r} {one_line(x['feedback'], 80)}")
    if e["status"] == "invalid" and e["agent_trace"]:
        click.echo("  the model's reply, as it came (why it could not be used is the status above):")
        for line in e["agent_trace"].splitlines()[-60:]:
            click.echo(f"    {printable(line)}")
    if e["trace"]:
        click.echo("  trace (tail):")
        for line in e["trace"].splitlines()[-20:]:
            click.echo(f"    {printable(line)}")
    if e["diff"]:
        click.echo("")
        _echo_diff(e["diff"])
    if frontier:
        _echo_frontier(store, run)


def _block(text: str, indent: int = 13) -> str:
    """Stored text (a rationale, a reason) as a block of `show`: each further line indented under
    the first and control characters escaped, so no line of it passes for one of `show` or the diff."""
    lines = str(text).replace("\r\n", "\n").rstrip("\n").split("\n")
    return ("\n" + " " * indent).join(printable(line) for line in lines)


def _echo_frontier(store, run) -> None:
    from overnight.ops.frontier import frontier

    front = frontier(store, run["id"])
    if not front:  # every train example has a leader, so an empty frontier means no example was scored
        click.echo(f"\nRun {run['id']} has no frontier: its metric scores no train examples one by one, "
                   "so no candidate leads on any.")
        return
    many = len(front) != 1
    click.echo(f"\nFrontier of run {run['id']}: {len(front)} candidate{'s' if many else ''} "
               f"lead{'' if many else 's'} on train examples")
    for seq, led in front:
        names = ", ".join(one_line(x) for x in led[:12]) + (", ..." if len(led) > 12 else "")
        click.echo(f"  #{seq:<4} leads {len(led):>3}: {names}")


@click.command()
@click.argument("exp")
@click.argument("exp2", required=False)
@db_option
def diff(exp, exp2, db):
    """Show the change EXP made against the baseline, or against EXP2."""
    store = open_store(db, create=False)
    run, e = find_experiment(store, exp)
    new = view_of(store, e)
    if exp2:
        run2, other = find_experiment(store, exp2 if ":" in exp2 else f"{run['id']}:{exp2}")
        if run2["recipe"] != run["recipe"]:  # two surfaces: a line diff between them says nothing
            raise OvernightError(
                f"Experiment {run['id']}:{e['seq']} is of recipe '{printable(run['recipe'])}' and {run2['id']}:{other['seq']} "
                f"of '{printable(run2['recipe'])}': a diff compares two versions of one recipe's surface.")
        old = view_of(store, other)
    else:
        old = view_of(store, baseline_of(store, run))
    from overnight.core.record import bounded_diff

    text = bounded_diff(surface_of(run), old, new)
    if not text:
        click.echo("No difference.")
    _echo_diff(text)


def _echo_diff(text: str) -> None:
    for line in text.splitlines():
        color = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else None
        click.secho(printable(line), fg=color)  # a candidate's text is a model's, and may hold escapes


@click.command()
@click.argument("run_ref", required=False, metavar="[RUN]")
@click.option("--format", "fmt_", type=click.Choice(["tsv", "jsonl"]), default="tsv", show_default=True)
@click.option("--output", "-o", type=click.File("w"), default="-", help="Where to write (default: stdout).")
@db_option
def export(run_ref, fmt_, output, db):
    """Write RUN's ledger (default: the latest run) as TSV or JSONL."""
    store = open_store(db, create=False)
    run = find_run(store, run_ref)
    if output.name not in ("-", "<stdout>"):  # a file opened as it is first written: nothing is lost yet
        check_output(output.name, store)
    rows = store.experiment_rows(run["id"], COLUMNS)  # streamed: memory stays flat however long the run
    shaped = (ledger_row(r, run["goal"]) for r in rows)
    if fmt_ == "jsonl":
        for r in shaped:
            output.write(json.dumps(r) + "\n")
        return
    writer = csv.writer(output, delimiter="\t", lineterminator="\n")
    writer.writerow(LEDGER)
    for r in shaped:
        writer.writerow([_cell(r[k], k in FREE_TEXT) for k in LEDGER])


def _cell(value, free: bool) -> str:
    """A TSV field: on one line with control characters escaped as `log` shows them (a lone \\r
    would start a row for many readers), and free text that a spreadsheet would take for a formula
    behind an apostrophe. Numbers stay as they are: -3 is a number."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    text = one_line(value, limit=len(value) * 10 + 10)  # whole: an escape is at most ten characters
    return "'" + text if free and text.startswith(FORMULA) else text
