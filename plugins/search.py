"""Agent `search`: tunes a surface's typed parameters, no LLM needed.

The agent knows its space (plugins/search_space.py) and picks a method to fit it:

- one ordered parameter (whole numbers, steps, a number range, numeric choices) is
  searched along its order (plugins/search_order.py): a coarse sweep, then the best
  is bracketed and closed in on;
- a finite space small against the budget left (every point fits in it) is measured
  point by point in a random order, that is sampled without replacement; so is any
  finite space with `sampler = "random"`, and the grid with `sampler = "grid"`;
- any other space goes to an Optuna sampler through ask/tell (TPE, CMA-ES or random).

Whatever the method, a point already measured or in flight is never proposed again:
when a sampler asks for one, its trial is told the score already known and the nearest
free point is measured in its place, without asking the sampler again. A finite space
measured in full ends the run with "every value was measured".

What the sampler is told: the score times +1 or -1 by the run's goal, so one study
maximizes either goal; crash, timeout and invalid as FAIL; guard_failed as the worst
score seen so far (its real score would pull the sampler into the forbidden region).
The ordered search takes a failure or a broken guard as worse than any score.

People's notes that fix or bound a parameter ("keep B3 at 12", "B3 between 10 and
20", plugins/search_notes.py) narrow the space from the next proposal on.

With parallel experiments the loop calls `propose` from several threads: one lock
keeps the agent's books; points in flight count as taken, and TPE runs with its
constant liar, so parallel proposals are distinct and spread out.

On --resume, `start` receives what earlier sessions recorded; every result is known
before the first proposal, so nothing is re-learned or re-paid. The baseline's values
ride in the first proposal's meta for that purpose.
"""

from __future__ import annotations

import math
import random
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from overnight.core.contracts import Agent, Attempt, Context, Parameter, ParametricSurface, Proposal, Surface, digest
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

from . import search_notes
from .search_order import OrderedSearch
from .search_space import ENUMERABLE, Space, canon, tidy

SAMPLERS = ("tpe", "cmaes", "random", "grid")
FAILED = ("crash", "timeout", "invalid")
# With no cap on experiments, a finite space is measured point by point up to this size.
SMALL = 256
EVERY_VALUE = "every value was measured"
MAX_TURNS = 100


@dataclass
class Point:
    values: dict[str, Any]
    goodness: float | None  # what the sampler is told; None: a failure
    broken: bool = False  # measured well but broke a guard


@dataclass
class InFlight:
    values: dict[str, Any]
    key: tuple
    digest: str
    trial: Any = None  # the Optuna trial, when a sampler's study holds this point
    study: Any = None


class SearchAgent(Agent):
    name = "search"
    summary = ("Tunes the surface's typed parameters: an ordered search for one parameter, every point of a small "
               "space, Optuna (TPE, CMA-ES, random or grid) otherwise; no LLM.")
    options = {
        "sampler": Option(str, "tpe, cmaes, random or grid (one ordered parameter, or a space small against the budget, "
                          "is searched by its own method with tpe and cmaes)", default="tpe", choices=SAMPLERS),
        "seed": Option(int, "a seed for a repeatable search (default: a new one each run)", default=None),
        "startup_trials": Option(int, "random points before TPE or CMA-ES start modelling", default=10, min=1),
        "grid_points": Option(int, "grid: points for a number parameter that has no step", default=5, min=2),
    }
    # Proposed in the loop's own thread: the sampler is in-process work that never waits (no model, no
    # network) and holds the interpreter lock throughout, so a worker thread would only add its
    # hand-off (about a millisecond of CPU each on a busy machine).
    instant = True

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.lock = threading.Lock()
        self.surface: Surface | None = None
        self.parameters: list[Parameter] = []
        self.history: list[Attempt] = []
        self.baseline_view: str | None = None  # the file measured as the baseline, on a fresh run
        self.baseline_values: dict | None = None
        self.baseline_noted = False
        self.opened = False
        self.sign = 1
        self.worst: float | None = None
        self.points: dict[tuple, Point] = {}  # every point measured in this run, by its values
        self.digests: dict[str, float | None] = {}  # view digest -> goodness: what the loop calls the same candidate
        self.flying: dict[int, InFlight] = {}  # proposal number -> a point being measured
        self.next_number = 1  # the baseline is number 0
        self.earlier = 0  # results of earlier sessions, so a seeded sampler does not replay them
        self.asks = 0  # points asked of a sampler (each one is measured, or told at once when taken)
        self.rng = random.Random(self.config.get("seed"))
        # Rebuilt when the notes change: the space, and the method's state over it.
        self.notes: tuple | None = None
        self.bounds: dict = {}
        self.restricted: list[Parameter] = []
        self.told: list[str] = []
        self.new_told = False
        self.space: Space | None = None
        self.taken: set[tuple] = set()  # index tuples of the space measured or in flight
        self.order: OrderedSearch | None = None
        self.plan = None  # an iterator over the space's points, when it is measured point by point
        self.study = None
        self.distributions: dict[str, Any] = {}

    # -- before the run -----------------------------------------------------------

    def prepare(self, surface: Surface) -> None:
        self.surface = surface
        self.parameters = surface.parameters() if isinstance(surface, ParametricSurface) else []
        if not self.parameters:
            raise OvernightError(
                f"The search agent tunes typed parameters, and the '{surface.name}' surface has none: "
                f"use a surface that declares them (spreadsheet cells, config keys) or another agent."
            )
        for p in self.parameters:
            _distribution(p)  # every declaration mistake is one sentence now, before anything runs
        if self.config["sampler"] == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise OvernightError("The search agent's sampler 'cmaes' needs the cmaes package: pip install cmaes.") from None

    def start(self, surface: Surface, history: list[Attempt]) -> None:
        if self.surface is None:
            self.prepare(surface)
        self.history = list(history)
        # The baseline is a known point. A fresh run has just measured it from the file; its
        # values then ride in the first proposal's meta, so a resumed session knows them too.
        if all(a.status == "baseline" for a in history):
            self.baseline_view = surface.read()
            try:
                self.baseline_values = surface.values_of(self.baseline_view)
            except OvernightError:
                self.baseline_values = None
        else:
            self.baseline_noted = True
            noted = [a.meta["baseline"] for a in history if isinstance(a.meta, dict) and isinstance(a.meta.get("baseline"), dict)]
            self.baseline_values = noted[0] if noted else None

    # -- proposing ----------------------------------------------------------------

    def propose(self, context: Context) -> Proposal | None:
        with self.lock:
            if not self.opened:
                self._open(context)
            self._follow(context.notes)
            # A turn ends without a proposal only when the surface writes the point picked the same
            # as one already known (a value rounded in the file); that point is then booked.
            for _ in range(MAX_TURNS):
                picked = self._pick(context)
                if picked is None:
                    self.exhausted = self._why_done()
                    return None
                values, trial = picked
                proposal = self._proposal(values, trial, context)
                if proposal is not None:
                    return proposal
            self.exhausted = "the agent found no point left whose file differs from one already measured"
            return None

    def _proposal(self, values: dict, trial, context: Context) -> Proposal | None:
        """The proposal for these values; None when the surface writes them as a point already known."""
        key = self.space.key(values)
        number = self.next_number
        rationale = ", ".join(f"{name}={_show(v)}" for name, v in values.items())
        try:
            view = self.surface.view_from(values, context.best_view)
        except OvernightError as exc:
            self.next_number += 1
            self.flying[number] = InFlight(values, key, "", trial, self.study if trial is not None else None)
            return Proposal(error=exc.message, rationale=rationale, meta=self._meta(number, values))
        d = digest(view)
        if d in self.digests or any(f.digest == d for f in self.flying.values()):
            # Written the same as a point measured or in flight (a value rounded in the file):
            # it counts as that point, and the next one is taken, never asked for again.
            if d in self.digests:
                self._learn(InFlight(values, key, d, trial, self.study if trial is not None else None), self.digests[d], False)
            elif trial is not None:
                self._tell(trial, None)
            return None
        self.next_number += 1
        self.flying[number] = InFlight(values, key, d, trial, self.study if trial is not None else None)
        trace = ""
        if self.new_told and self.told:
            trace, self.new_told = "Following the notes: " + "; ".join(self.told) + ".", False
        return Proposal(view=view, rationale=rationale, meta=self._meta(number, values), trace=trace)

    def _meta(self, number: int, values: dict) -> dict:
        """Stored with the experiment and handed back on --resume."""
        meta = {"trial": number, "values": values}
        if not self.baseline_noted and self.baseline_values is not None:
            meta["baseline"] = self.baseline_values
            self.baseline_noted = True
        return meta

    def observe(self, attempt: Attempt) -> None:
        with self.lock:
            flying = self.flying.pop(attempt.meta.get("trial"), None)
            if flying is None:
                return
            if attempt.status == "duplicate":  # the loop knew this candidate; its score is not ours to see
                self._learn(flying, self.digests.get(flying.digest), False)
                return
            goodness = self._goodness(attempt)
            if goodness is not None and attempt.status != "guard_failed":
                self.worst = goodness if self.worst is None else min(self.worst, goodness)
            self._learn(flying, goodness, attempt.status == "guard_failed")

    def _learn(self, flying: InFlight, goodness: float | None, broken: bool) -> None:
        """Books one measured point everywhere it counts."""
        self.points[flying.key] = Point(flying.values, goodness, broken)
        if flying.digest:
            self.digests[flying.digest] = goodness
        idx = self.space.index(flying.values)
        if idx is not None:
            self.taken.add(idx)
            if self.order is not None:
                self.order.measured(idx[0], None if broken else goodness)
        if flying.trial is not None and flying.study is self.study:
            self._tell(flying.trial, goodness)
        elif self.study is not None and idx is not None:
            self._add(flying.values, goodness)  # measured while an earlier space was searched

    # -- choosing the next point --------------------------------------------------------

    def _pick(self, context: Context) -> tuple[dict, Any] | None:
        """(values, the sampler's trial or None), or None when the space has no free point left."""
        space, kind = self.space, self.config["sampler"]
        if not space.axes:  # the notes fixed every parameter: one point
            return None if self.taken else (space.values(()), None)
        if kind in ("tpe", "cmaes") and len(space.axes) == 1 and space.axes[0].ordered:
            return self._next_in_order()
        if kind == "grid" or (space.finite and space.size <= ENUMERABLE and (kind == "random" or self._small(context))):
            return self._next_in_plan()
        return self._ask()

    def _small(self, context: Context) -> bool:
        left = context.budget_left.get("experiments")
        free = self.space.size - len(self.taken)
        return free <= (SMALL if left is None else left)

    def _next_in_order(self) -> tuple[dict, Any] | None:
        if self.order is None:
            self.order = OrderedSearch(self.space.axes[0])
            for idx in self.taken:
                self.order.propose(idx[0])
            for point in self.points.values():
                idx = self.space.index(point.values)
                if idx is not None:
                    self.order.measured(idx[0], None if point.broken else point.goodness)
        i = self.order.next()
        if i is None:
            return None
        self.order.propose(i)
        self.taken.add((i,))
        return self.space.values((i,)), None

    def _next_in_plan(self) -> tuple[dict, Any] | None:
        if self.plan is None:
            self.plan = self.space.shuffled(self.rng)
        for idx in self.plan:
            if idx not in self.taken:
                self.taken.add(idx)
                return self.space.values(idx), None
        return None

    def _ask(self) -> tuple[dict, Any] | None:
        from optuna.trial import TrialState, create_trial

        study = self._study()
        trial = study.ask(self.distributions)
        self.asks += 1
        values = dict(self.space.fixed) | {name: _plain(v) for name, v in trial.params.items()}
        values = {n: values[n] for n in self.space.names}
        idx = self.space.index(values)
        key = self.space.key(values)
        if key not in self.points and not any(f.key == key for f in self.flying.values()) and (
                idx is None or not self.space.finite or idx not in self.taken):
            if idx is not None:
                self.taken.add(idx)
            return values, trial
        # A point already measured or in flight: the sampler is told its known score (it asked
        # there because it looks good, and hears so again), and the nearest free point is
        # measured instead, without asking again.
        known = self.points.get(key)
        self._tell(trial, known.goodness if known is not None else None)
        free = self.space.near(idx or tuple(a.count // 2 for a in self.space.axes), self.rng, self._is_taken)
        if free is None:
            return None
        self.taken.add(free)
        values = self.space.values(free)
        try:
            substitute = create_trial(params={n: values[n] for n in self.distributions},
                                      distributions=self.distributions, state=TrialState.RUNNING)
            study.add_trial(substitute)
            told = _Told(study, study.get_trials(deepcopy=False)[-1].number)
        except (ValueError, TypeError):
            told = None
        return values, told

    def _is_taken(self, idx: tuple) -> bool:
        if idx in self.taken:
            return True
        key = self.space.key(self.space.values(idx))
        return key in self.points or any(f.key == key for f in self.flying.values())

    def _why_done(self) -> str:
        if self.space.finite:
            return f"{EVERY_VALUE} ({self.space.size} point{'s' if self.space.size != 1 else ''})"
        return "the agent found no point left to measure"

    # -- the space, as the notes leave it ------------------------------------------------

    def _follow(self, notes: list[str]) -> None:
        """Builds the space the first time, and again whenever the notes say something new."""
        said = tuple(notes)
        if said == self.notes and self.space is not None:
            return
        bounds = search_notes.read(list(notes), self.parameters)
        if self.space is not None and bounds == self.bounds:
            self.notes = said
            return
        self.notes, self.bounds = said, bounds
        parameters, fixed, told = search_notes.restrict(self.parameters, bounds)
        self.told, self.new_told = told, bool(told)
        grid = self.config["grid_points"] if self.config["sampler"] == "grid" else None
        self.space = Space(parameters, fixed, grid_points=grid)
        self.restricted = parameters
        self.taken, self.order, self.plan, self.study = set(), None, None, None
        for values in [p.values for p in self.points.values()] + [f.values for f in self.flying.values()]:
            idx = self.space.index(values)
            if idx is not None:
                self.taken.add(idx)

    # -- the study ------------------------------------------------------------------

    def _open(self, context: Context) -> None:
        """Learns the goal, the baseline and what earlier sessions measured, before the first proposal."""
        self.opened = True
        self.sign = 1 if context.goal == "maximize" else -1
        earlier = [a for a in self.history if a.status not in ("baseline", "duplicate", "interrupted")
                   and isinstance(a.meta, dict) and isinstance(a.meta.get("values"), dict)]
        self.earlier = len(earlier)
        names = [p.name for p in self.parameters]
        if context.baseline_score is not None:
            goodness = self.worst = self.sign * context.baseline_score
            if self.baseline_view is not None:
                self.digests[digest(self.baseline_view)] = goodness
            if isinstance(self.baseline_values, dict) and set(names) <= set(self.baseline_values):
                values = {n: self.baseline_values[n] for n in names}
                self.points[tuple(canon(values[n]) for n in names)] = Point(values, goodness)
        for a in earlier:
            values = a.meta["values"]
            goodness = self._goodness(a)
            if goodness is not None and a.status != "guard_failed":
                self.worst = goodness if self.worst is None else min(self.worst, goodness)
            if set(names) <= set(values):
                values = {n: values[n] for n in names}
                self.points[tuple(canon(values[n]) for n in names)] = Point(values, goodness, a.status == "guard_failed")
        numbers = [a.meta.get("trial") for a in self.history if isinstance(a.meta, dict)]
        self.next_number = max([n for n in numbers if isinstance(n, int)] + [0]) + 1
        self.history = []

    def _study(self):
        """The sampler's study over the space as it is now, told every point measured in it."""
        if self.study is not None:
            return self.study
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        fixed = self.space.fixed
        self.distributions = {p.name: _distribution(p) for p in self.restricted if p.name not in fixed}
        # A resumed session with a fixed seed would otherwise replay the first session's draws.
        self.study = optuna.create_study(direction="maximize", sampler=self._sampler(offset=self.earlier))
        for point in self.points.values():
            if self.space.index(point.values) is not None:
                self._add(point.values, point.goodness)
        return self.study

    def _sampler(self, offset: int = 0):
        import optuna

        seed, startup = self.config["seed"], self.config["startup_trials"]
        if seed is not None:
            seed += offset
        kind = self.config["sampler"]
        if kind == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        # constant_liar keeps parallel experiments from all asking for the same point.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True)

    def _goodness(self, attempt: Attempt) -> float | None:
        """What the study is told: higher is better; None for a failure."""
        if attempt.status in FAILED or attempt.score is None:
            return None
        if attempt.status == "guard_failed":
            return self.worst
        return self.sign * attempt.score

    def _tell(self, trial, goodness: float | None) -> None:
        from optuna.trial import TrialState

        study, trial = (trial.study, trial.number) if isinstance(trial, _Told) else (self.study, trial)
        if goodness is None:
            _tell_study(study, trial, None, TrialState.FAIL)
        else:
            _tell_study(study, trial, goodness, None)

    def _add(self, values: dict, goodness: float | None) -> None:
        """Tells the study about a point it did not ask for (the baseline, an earlier session)."""
        import optuna
        from optuna.trial import TrialState

        params = {n: values[n] for n in self.distributions if n in values}
        if set(params) != set(self.distributions):
            return
        try:
            self.study.add_trial(optuna.trial.create_trial(
                params=params, distributions=self.distributions, value=goodness,
                state=TrialState.FAIL if goodness is None else TrialState.COMPLETE,
            ))
        except (ValueError, TypeError):
            pass  # outside today's bounds (the recipe changed): the sampler simply does not see it


def _tell_study(study, trial, value, state) -> None:
    """`study.tell`, without the deep copy of the trial it returns (which nobody here reads):
    what study.optimize itself calls, where this optuna has it."""
    try:
        from optuna.study._tell import _tell_with_warning
    except ImportError:
        study.tell(trial, value, state=state)
        return
    _tell_with_warning(study=study, trial=trial, value_or_values=value, state=state)


@dataclass
class _Told:
    """A trial the agent added itself (a substitute point), told by its number."""

    study: Any
    number: int


def _distribution(p: Parameter):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    where = f"parameter '{p.name}'"
    if p.choices is not None:
        if not p.choices:
            raise OvernightError(f"The {where} has an empty list of choices.")
        return CategoricalDistribution(list(p.choices))
    if p.min is None or p.max is None:
        raise OvernightError(f"The {where} needs both min and max, or a list of choices, for the search agent.")
    if p.min > p.max:
        raise OvernightError(f"The {where} has min {p.min:g} larger than max {p.max:g}.")
    if p.log and p.min <= 0:
        raise OvernightError(f"The {where} is searched on a log scale, so its min must be above 0, not {p.min:g}.")
    if p.log and p.step and not (p.integer and p.step == 1):
        raise OvernightError(f"The {where} cannot have both a step and a log scale; drop one of them.")
    try:
        # A range that is not a whole number of steps ends at its last step (Optuna would
        # do the same, with a warning the person cannot act on).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if p.integer:
                low, step = math.ceil(p.min), int(p.step or 1)
                return IntDistribution(low, low + (math.floor(p.max) - low) // step * step, step=step, log=p.log)
            if p.step:
                high = tidy(p.min + math.floor((p.max - p.min) / p.step + 1e-9) * p.step)
                return FloatDistribution(float(p.min), high, step=p.step)
            return FloatDistribution(float(p.min), float(p.max), log=p.log)
    except ValueError as exc:
        raise OvernightError(f"The {where} cannot be searched: {exc}.") from None


def _plain(value: Any) -> Any:
    """numpy scalars to plain Python, so values store as JSON."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@hookimpl
def overnight_register_agents(register):
    register(SearchAgent)
