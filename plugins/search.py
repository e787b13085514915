"""Agent `search`: tunes a surface's typed parameters with Optuna, no LLM needed.

Optuna's ask/tell interface does the thinking (TPE, CMA-ES, random or grid); this
module only translates between the loop and a study:

- a proposal is an asked trial, turned into a view by `surface.view_from`;
- every outcome is told back. The study always maximizes "goodness", the score
  times +1 or -1 by the run's goal, so one study fits both goals;
- crash, timeout and invalid are told as FAIL (the sampler learns nothing from
  them and moves on);
- guard_failed is told as the worst score seen so far: it measured well but broke
  a guard, and telling its real score would pull the sampler into the forbidden
  region;
- a point whose view was already measured is not proposed again: the trial is
  told the known score at once and the next one is asked (the loop would only
  record it as a duplicate). A grid that has been walked in full ends the run.

On --resume, `start` receives what earlier sessions recorded; each result is told
to the new study before the first proposal, so nothing is re-learned or re-paid.
The baseline's values ride in the first proposal's meta for that purpose.
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Any

from overnight.core.contracts import Agent, Attempt, Context, Parameter, ParametricSurface, Proposal, Surface, digest
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

SAMPLERS = ("tpe", "cmaes", "random", "grid")
# After this many asked points in a row that were all measured before, the space is
# taken as exhausted (small integer or choice spaces, or a sampler that converged).
MAX_REPEATS = 200
FAILED = ("crash", "timeout", "invalid")


class SearchAgent(Agent):
    name = "search"
    summary = "Tunes the surface's typed parameters with Optuna (TPE, CMA-ES, random or grid); no LLM."
    options = {
        "sampler": Option(str, "tpe, cmaes, random or grid", default="tpe", choices=SAMPLERS),
        "seed": Option(int, "a seed for a repeatable search (default: a new one each run)", default=None),
        "startup_trials": Option(int, "random points before TPE or CMA-ES start modelling", default=10, min=1),
        "grid_points": Option(int, "grid: points for a number parameter that has no step", default=5, min=2),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.lock = threading.Lock()
        self.surface: Surface | None = None
        self.parameters: list[Parameter] = []
        self.distributions: dict[str, Any] = {}
        self.history: list[Attempt] = []
        self.baseline_view: str | None = None  # the file measured as the baseline, on a fresh run
        self.baseline_values: dict | None = None
        self.baseline_noted = False
        self.study = None
        self.sign = 1
        self.known: dict[str, float | None] = {}  # view digest -> goodness told (None: failed)
        self.pending: dict[int, tuple[Any, str]] = {}  # trial number -> (trial, view digest)
        self.waiting: dict[str, list[Any]] = {}  # digest -> duplicate trials waiting for its result
        self.worst: float | None = None
        self.grid_size = 0

    # -- before the run -----------------------------------------------------------

    def prepare(self, surface: Surface) -> None:
        self.surface = surface
        self.parameters = surface.parameters() if isinstance(surface, ParametricSurface) else []
        if not self.parameters:
            raise OvernightError(
                f"The search agent tunes typed parameters, and the '{surface.name}' surface has none: "
                f"use a surface that declares them (spreadsheet cells, config keys) or another agent."
            )
        self.distributions = {p.name: _distribution(p) for p in self.parameters}
        if self.config["sampler"] == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise OvernightError("The search agent's sampler 'cmaes' needs the cmaes package: pip install cmaes.") from None
        if self.config["sampler"] == "grid":
            self.grid = {p.name: _grid_values(p, self.config["grid_points"]) for p in self.parameters}
            self.grid_size = math.prod(len(v) for v in self.grid.values())

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
            if self.study is None:
                self._open(context)
            for _ in range(MAX_REPEATS):
                if self._grid_walked():
                    return None
                trial = self.study.ask(self.distributions)
                values = {p.name: _plain(trial.params[p.name]) for p in self.parameters}
                rationale = ", ".join(f"{name}={_show(v)}" for name, v in values.items())
                try:
                    view = self.surface.view_from(values, context.best_view)
                except OvernightError as exc:
                    self.pending[trial.number] = (trial, "")
                    return Proposal(error=exc.message, rationale=rationale, meta=self._meta(trial, values))
                key = digest(view)
                if key in self.known:
                    self._tell(trial, self.known[key])
                    continue
                self.pending[trial.number] = (trial, key)
                return Proposal(view=view, rationale=rationale, meta=self._meta(trial, values))
            return None

    def _meta(self, trial, values: dict) -> dict:
        """Stored with the experiment and handed back on --resume."""
        meta = {"trial": trial.number, "values": values}
        if not self.baseline_noted and self.baseline_values is not None:
            meta["baseline"] = self.baseline_values
            self.baseline_noted = True
        return meta

    def observe(self, attempt: Attempt) -> None:
        number = attempt.meta.get("trial")
        with self.lock:
            if number not in self.pending:
                return
            trial, key = self.pending.pop(number)
            if attempt.status == "duplicate":
                if key in self.known:
                    self._tell(trial, self.known[key])
                elif key and any(key == k for _, k in self.pending.values()):
                    self.waiting.setdefault(key, []).append(trial)  # its twin is still being measured
                else:
                    self._tell(trial, None)  # a twin this study never saw: nothing to learn from it
                return
            goodness = self._goodness(attempt)
            if goodness is not None:
                self.worst = goodness if self.worst is None else min(self.worst, goodness)
            self._tell(trial, goodness)
            if key:
                self.known[key] = goodness
                for twin in self.waiting.pop(key, []):
                    self._tell(twin, goodness)

    # -- the study ------------------------------------------------------------------

    def _open(self, context: Context) -> None:
        """Creates the study once the goal is known, and tells it what is already known."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.sign = 1 if context.goal == "maximize" else -1
        earlier = [a for a in self.history if a.status not in ("baseline", "duplicate", "interrupted")
                   and isinstance(a.meta, dict) and isinstance(a.meta.get("values"), dict)]
        # A resumed session with a fixed seed would otherwise replay the first session's draws.
        self.study = optuna.create_study(direction="maximize", sampler=self._sampler(offset=len(earlier)))
        if context.baseline_score is not None:
            goodness = self.worst = self.sign * context.baseline_score
            if self.baseline_view is not None:
                self.known[digest(self.baseline_view)] = goodness
            if self.baseline_values is not None:
                key = self._key(self.baseline_values, context.best_view)
                if key:
                    self.known[key] = goodness
                if self.config["sampler"] != "grid":  # a grid learns nothing from an off-grid point
                    self._add(self.baseline_values, goodness, failed=False)
        for a in earlier:
            values = a.meta["values"]
            goodness = self._goodness(a)
            if goodness is not None:
                self.worst = goodness if self.worst is None else min(self.worst, goodness)
            key = self._key(values, context.best_view)
            if key:
                self.known[key] = goodness
            self._add(values, goodness, failed=goodness is None)
        self.history = []

    def _key(self, values: dict, base: str) -> str:
        """The digest of the view these values make: what the loop calls the same candidate."""
        try:
            return digest(self.surface.view_from(values, base))
        except (OvernightError, KeyError, ValueError, TypeError):
            return ""

    def _sampler(self, offset: int = 0):
        import optuna

        seed, startup = self.config["seed"], self.config["startup_trials"]
        if seed is not None:
            seed += offset
        kind = self.config["sampler"]
        if kind == "tpe":
            # constant_liar keeps parallel experiments from all asking for the same point.
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True)
        if kind == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)

        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values):
                # Optuna's grid stops `study.optimize` when walked in full, which raises under
                # ask/tell; here the agent notices the end itself and returns no proposal.
                pass

        return Grid(self.grid, seed=seed)

    def _goodness(self, attempt: Attempt) -> float | None:
        """What the study is told: higher is better; None for a failure."""
        if attempt.status in FAILED or attempt.score is None:
            return None
        if attempt.status == "guard_failed":
            return self.worst
        return self.sign * attempt.score

    def _tell(self, trial, goodness: float | None) -> None:
        from optuna.trial import TrialState

        if goodness is None:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, goodness)

    def _add(self, values: dict, goodness: float | None, failed: bool) -> None:
        """Tells the study about a point measured outside it (the baseline, an earlier session)."""
        import optuna
        from optuna.trial import TrialState

        if set(values) != set(self.distributions):
            return
        try:
            trial = optuna.trial.create_trial(
                params=values, distributions=self.distributions,
                value=None if failed else goodness, state=TrialState.FAIL if failed else TrialState.COMPLETE,
            )
            self.study.add_trial(trial)
        except (ValueError, TypeError):
            pass  # outside today's bounds (the recipe changed): the sampler simply does not see it

    def _grid_walked(self) -> bool:
        if self.config["sampler"] != "grid":
            return False
        started = {t.system_attrs.get("grid_id") for t in self.study.get_trials(deepcopy=False)}
        started.discard(None)
        return len(started) >= self.grid_size or self.study.sampler.is_exhausted(self.study)


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
            high = _grid_values(p, 2)[-1] if p.step else float(p.max)
            return FloatDistribution(float(p.min), high, step=p.step or None, log=p.log)
    except ValueError as exc:
        raise OvernightError(f"The {where} cannot be searched: {exc}.") from None


def _grid_values(p: Parameter, points: int) -> list:
    """Every value the grid sampler visits for one parameter."""
    if p.choices is not None:
        return list(p.choices)
    lo, hi = p.min, p.max
    if p.integer:
        return list(range(math.ceil(lo), math.floor(hi) + 1, int(p.step or 1)))
    if p.step:
        n = math.floor((hi - lo) / p.step + 1e-9)
        return [_tidy(lo + i * p.step) for i in range(n + 1)]
    if lo == hi:
        return [float(lo)]
    if p.log:
        ratio = (hi / lo) ** (1 / (points - 1))
        return [_tidy(min(hi, lo * ratio**i)) for i in range(points)]
    return [_tidy(lo + (hi - lo) * i / (points - 1)) for i in range(points)]


def _tidy(x: float) -> float:
    """0.30000000000000004 -> 0.3: grid values end up in people's files."""
    return float(f"{x:.12g}")


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
