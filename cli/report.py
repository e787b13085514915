"""`overnight report`: the morning's page, one HTML file to open in any browser."""

from __future__ import annotations

from pathlib import Path

import click

from overnight.cli.common import check_output, db_option, open_store
from overnight.ops.find import find_run
from overnight.core.errors import OvernightError


@click.command()
@click.argument("ref", required=False, metavar="[RUN]")
@click.option("--night", "whole_night", is_flag=True, help="The latest night (or night RUN) instead of one run.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where to write it (default: .overnight/reports/).")
@click.option("--open", "open_it", is_flag=True, help="Open it in your browser.")
@db_option
def report(ref, whole_night, output, open_it, db):
    """Write RUN's report (default: the latest run) as one self-contained HTML file.

    It holds the run's figures, the score over experiments, the budget used,
    the best change, the kept changes, the examples the best fixed and broke,
    and the commands to apply.
    """
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise OvernightError("overnight report draws its plots with matplotlib, which is not installed: pip install 'overnight[report]'.")
    from overnight.night import report as pages

    store = open_store(db, readonly=True)
    if whole_night:
        html, name = _night(store, ref)
    else:
        run = find_run(store, ref)
        html, name = pages.run_report(store, run["id"]), f"run-{run['id']}.html"
    path = output or store.path.parent / "reports" / name
    if output:
        check_output(output, store)
        if not output.parent.is_dir():
            raise OvernightError(f"Cannot write the report to {output}: {output.parent} is not a folder.")
    try:
        pages.write(html, path)
    except OSError as exc:
        raise OvernightError(f"Cannot write the report to {path}: {(exc.strerror or str(exc)).lower()}.") from None
    try:
        shown = path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = path
    click.echo(f"Wrote {shown} ({len(html) // 1024 + 1} KB).")
    if open_it:
        import webbrowser  # it honours $BROWSER

        if not webbrowser.open(path.resolve().as_uri()):
            click.echo(f"Could not open a browser here; open {path} yourself.", err=True)


def _night(store, ref: str | None) -> tuple[str, str]:
    from overnight.night.report import night_report
    from overnight.night.state import Nights

    if not Nights.exists(store):
        raise OvernightError(f"There is no night in {store.path} yet: start one with `overnight night RECIPE...`.")
    nights = Nights(store)
    if ref is None:
        row = nights.latest()
    else:
        try:
            row = nights.night(int(ref))
        except ValueError:
            raise OvernightError(f"{ref!r} is not a night: write its number (see `overnight status`).") from None
    if row is None:
        raise OvernightError(f"There is no night {ref} in {store.path} (see `overnight status`).")
    return night_report(nights, row["id"]), f"night-{row['id']}.html"
