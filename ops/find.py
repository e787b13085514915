"""Finding a run or an experiment from what a person types: `3`, `pricing`, `12`, `3:12`."""

from __future__ import annotations

from pathlib import Path

from overnight.core.errors import OvernightError
from overnight.core.store import ELSEWHERE




def find_run(store, ref: str | None) -> dict:
    """A run number, a recipe name (its latest run), or nothing for the latest run."""
    if ref in (None, "", "latest"):
        run = store.latest_run()
        if run is None:
            raise OvernightError(f"There are no runs in {store.path} yet. {ELSEWHERE}")
        return run
    try:
        number = int(ref)
    except ValueError:
        run = store.latest_run(ref)
    else:
        run = store.run(number) if abs(number) < 2 ** 63 else None  # SQLite's integers end there
    if run is None:
        raise OvernightError(f"There is no run {ref!r} in {store.path} (give a run number or a recipe name; see `overnight status`).")
    return run


def find_experiment(store, ref: str) -> tuple[dict, dict]:
    """`SEQ` in the latest run, or `RUN:SEQ`."""
    run_ref, _, seq = ref.rpartition(":")
    try:
        seq_n = int(seq)
    except ValueError:
        raise OvernightError(f"{ref!r} is not an experiment: write its number (e.g. 12) or RUN:NUMBER (e.g. 3:12).") from None
    run = find_run(store, run_ref or None)
    exp = store.experiment_at(run["id"], seq_n) if abs(seq_n) < 2 ** 63 else None
    if exp is None:
        raise OvernightError(f"Run {run['id']} has no experiment {seq_n} (see `overnight log {run['id']}`).")
    return run, exp


def baseline_of(store, run: dict) -> dict:
    """The run's baseline experiment: the one its row names or, in a store whose run row does not
    name one (written by an older overnight), its experiment 0."""
    exp = (store.experiment(run["baseline_experiment"]) if run["baseline_experiment"] else None) or store.experiment_at(run["id"], 0)
    if exp is None:
        raise OvernightError(f"Run {run['id']} has no baseline stored to compare with: give two experiments "
                             f"(overnight diff {run['id']}:A {run['id']}:B).")
    return exp


def view_of(store, exp: dict) -> str:
    """The view an experiment measured, exactly as it was proposed."""
    if not exp["candidate"]:
        raise OvernightError(f"Experiment {exp['seq']} has no candidate ({exp['status']}: {exp['reason']}).")
    view = store.candidate(exp["candidate"])
    if view is None:
        raise OvernightError(f"The candidate of experiment {exp['seq']} is missing from the store.")
    return view


def recipe_of(run: dict):
    """The recipe as the run recorded it (not the file as it is now): the same plugins, the same options."""
    from overnight.core.recipe import parse

    try:
        return parse(run["recipe_text"], Path(run["recipe_path"]))
    except OvernightError as exc:  # the file as it is now may read well: say which text is meant
        raise OvernightError(f"Run {run['id']} recorded its recipe as it was when it began, and that copy (kept in the "
                             f"store) no longer reads: {exc.message}", exit_code=exc.exit_code) from None


def surface_of(run: dict):
    """The run's surface, rebuilt from the recipe text the run recorded."""
    recipe = recipe_of(run)
    return recipe.surface.build(recipe.dir)
