"""What the search agent itself costs: per experiment on a small integer space, and against plain Optuna.

1. A small integer space: one config key with 115 whole values, an instant in-process metric,
   a budget larger than the space. Printed: experiments, sampler asks, the agent's time per
   experiment (propose + observe) for the first and last tenth of the run, the wall time per
   experiment, and why the run stopped. Target: flat <= 10 ms/exp; asks <= experiments + a few.
   The same with two keys (115 x 10 values, 300 experiments: too many to list, so TPE searches
   and, once it converges, keeps asking for points already measured).
2. The bundled `pricing` recipe, 100 experiments, against the same study in plain Optuna (the
   same TPE settings and seed, the same compiled cell metric and guard), in pairs that
   alternate which goes first: in this process (the loop and its store against
   `study.optimize`), and as whole commands (`overnight run` against `python` running the
   plain study), start-up included. Printed: wall and CPU time of each pair, the median and
   the best (smallest) ratio; on a busy machine the CPU figures are the steadier ones. In this
   process each run starts from a collected heap (outside the timing): a full collection of
   what earlier runs left takes 150-250 ms here, and would land on one side of a pair at random.
   Target: <= 1.05x.

   The same work on both sides: overnight measures the workbook as it is (its baseline) and
   then 100 proposals, and tells the sampler the baseline; so the plain study is given the
   starting values first (`enqueue_trial`) and then asks for 100 trials: 101 evaluations and
   100 sampler asks each. overnight's confirmation at the end measures the baseline and the
   best again, which the compiled model remembers (it is deterministic): no evaluation more.

   After the pairs, the CPU of each side is split (in pairs as well, medians): the formula
   model (compiling and evaluating, with the number of evaluations), the sampler, the
   spreadsheet surface, the search agent's books (its own, and the study's ask and tell, which
   the plain study counts in its rest), and the rest (a profile by thread-time counters, so
   work in any thread counts). The two "rest" figures differ by what the loop, the store and
   the recipe cost beyond a hand-written study; a line gives the median of the pairs'
   differences, figure by figure. The last line adds up the differences in what only one side
   does (surface, agent, rest) and sets them against the plain study's CPU: the ratio the pairs
   would show on a machine whose speed held still, which this one's does not (the same
   evaluations take from 2.1 to 3.2 s from one run to the next).

    python bench/search_overhead.py [--pairs 5] [--only small|pricing|command]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from overnight.core.contracts import Measurement, Metric
from overnight.core.events import EXPERIMENT_FINISHED
from overnight.core.hookspecs import hookimpl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.bundled import bundled_copy  # noqa: E402

VALUES = 115  # x in 0..114
SMALL_RECIPE = """
[recipe]
name = "small"

[surface]
kind = "config"
path = "params.toml"
params = [{{ key = "x", min = 0, max = {top}, integer = true }}{more}]

[metric]
kind = "peak"
goal = "maximize"

[agent]
kind = "search"
seed = {seed}

[budget]
experiments = {experiments}
"""


class PeakMetric(Metric):
    """A single peak at x = 83 read from the view, in-process: the metric costs next to nothing."""

    name = "peak"
    summary = "A peak at x = 83 (in-process, instant)."
    options = {}
    reads = "view"

    def measure(self, artifact, folder, request):
        values = dict(line.split(" = ") for line in request.view.splitlines() if " = " in line)
        return Measurement(-(float(values["x"]) - 83) ** 2 - (float(values.get("y", 4)) - 4) ** 2)


@hookimpl
def overnight_register_metrics(register):
    register(PeakMetric)


class Counted:
    """Counts sampler asks and times the agent's own calls, whichever agent version runs."""

    def __init__(self, agent):
        import optuna

        self.asks = 0
        self.agent_seconds: list[float] = []
        original = optuna.study.Study.ask

        def ask(study, *a, **kw):
            self.asks += 1
            return original(study, *a, **kw)

        optuna.study.Study.ask = ask
        self.restore = lambda: setattr(optuna.study.Study, "ask", original)
        for name in ("propose", "observe"):
            self._time(agent, name)

    def _time(self, agent, name):
        method = getattr(agent, name)

        def timed(*a, **kw):
            begin = time.perf_counter()
            try:
                return method(*a, **kw)
            finally:
                if name == "propose":
                    self.agent_seconds.append(time.perf_counter() - begin)
                elif self.agent_seconds:
                    self.agent_seconds[-1] += time.perf_counter() - begin

        setattr(agent, name, timed)


def small_space(seed: int, experiments: int, two: bool = False) -> dict:
    from overnight.core.plugins import Registry
    from overnight.core.recipe import load
    from overnight.core.runner import build, run
    from overnight.core.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "small"
        folder.mkdir()
        more = ', { key = "y", min = 0, max = 9, integer = true }' if two else ""
        (folder / "recipe.toml").write_text(SMALL_RECIPE.format(top=VALUES - 1, seed=seed, experiments=experiments, more=more))
        (folder / "params.toml").write_text("x = 10\ny = 0\n" if two else "x = 10\n")
        store = Store(Path(tmp) / "overnight.db")
        setup = build(load(folder, Registry().load(modules=[__name__])), store)
        counted = Counted(setup.agent)
        stamps: list[float] = []
        setup.events.subscribe(lambda e: stamps.append(time.perf_counter()) if e.kind == EXPERIMENT_FINISHED else None)
        try:
            summary = run(setup)
        finally:
            counted.restore()
        store.close()
    agent = counted.agent_seconds[:summary.experiments]
    tenth = max(1, len(agent) // 10)
    return {
        "experiments": summary.experiments, "asks": counted.asks, "stop": summary.stop_reason, "best": summary.best,
        "first": statistics.fmean(agent[:tenth]) * 1000, "last": statistics.fmean(agent[-tenth:]) * 1000,
        "wall": (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1) * 1000,
    }


# -- pricing against plain Optuna -------------------------------------------------------------


def with_overnight(experiments: int) -> tuple[float, float]:
    """The recipe through the real loop and store: from loading the recipe to the summary."""
    from overnight.core.recipe import load
    from overnight.core.runner import build, run
    from overnight.core.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        folder = bundled_copy(Path(tmp), "pricing", experiments)
        gc.collect()
        begin, cpu = time.perf_counter(), time.process_time()
        store = Store(Path(tmp) / "overnight.db")
        summary = run(build(load(folder), store))
        seconds = time.perf_counter() - begin, time.process_time() - cpu
        store.close()
        assert summary.experiments == experiments, summary
        return seconds


def with_optuna(experiments: int) -> tuple[float, float]:
    """The same study written by hand: TPE with the recipe's seed, the same compiled model, the
    workbook's starting values measured first as overnight measures its baseline."""
    import optuna

    from overnight.core.contracts import MeasureRequest
    from overnight.core.recipe import load
    from overnight.plugins.search import _distribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = bundled_copy(Path(tmp), "pricing", experiments)
        gc.collect()
        begin, cpu = time.perf_counter(), time.process_time()
        r = load(folder)
        surface = r.surface.build(r.dir)
        metric, guard = r.metrics[0].build(r.dir), r.guards[0].build(r.dir)
        metric.prepare(surface)
        guard.prepare(surface)
        base = surface.read()
        params = surface.parameters()
        space = {p.name: _distribution(p) for p in params}

        def objective(trial):
            view = surface.view_from({p.name: _suggest(trial, p.name, space[p.name]) for p in params}, base)
            request = MeasureRequest(10, view=view)
            value = metric.measure(folder, folder, request).value
            cash = guard.measure(folder, folder, request).value
            return value if cash >= 0 else -1e9

        sampler = optuna.samplers.TPESampler(seed=7, n_startup_trials=10, multivariate=True, constant_liar=True)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.enqueue_trial(surface.values_of(base))
        study.optimize(objective, n_trials=experiments + 1)
        return time.perf_counter() - begin, time.process_time() - cpu


PLAIN = "import sys; sys.path.insert(0, {bench!r}); import search_overhead as so; so.with_optuna({n})"


def command(experiments: int, ours: bool) -> tuple[float, float]:
    """(wall, CPU) of `overnight run` on the recipe, or of python running the plain study."""
    import os
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        folder = bundled_copy(Path(tmp), "pricing", experiments)
        if ours:
            argv = [str(Path(sys.executable).with_name("overnight")), "run", str(folder), "--yes", "--db", str(Path(tmp) / "o.db")]
        else:
            argv = [sys.executable, "-c", PLAIN.format(bench=str(Path(__file__).parent), n=experiments)]
        before, begin = os.times(), time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp)
        wall, after = time.perf_counter() - begin, os.times()
        assert done.returncode == 0, done.stdout + done.stderr
        return wall, after.children_user + after.children_system - before.children_user - before.children_system


def pairs(label: str, run_ours, run_theirs, count: int) -> None:
    walls, cpus = [], []
    for i in range(count):
        # Alternate which goes first, so a busy moment of the machine does not always land on one.
        if i % 2:
            theirs, ours = run_theirs(), run_ours()
        else:
            ours, theirs = run_ours(), run_theirs()
        walls.append(ours[0] / theirs[0])
        cpus.append(ours[1] / theirs[1])
        print(f"{label}, pair {i + 1}: overnight {ours[0]:.2f} s ({ours[1]:.2f} s CPU), "
              f"plain Optuna {theirs[0]:.2f} s ({theirs[1]:.2f} s CPU): {walls[-1]:.2f}x wall, {cpus[-1]:.2f}x CPU")
    print(f"{label}: median {statistics.median(walls):.2f}x wall, {statistics.median(cpus):.2f}x CPU; "
          f"best {min(walls):.2f}x wall, {min(cpus):.2f}x CPU over {count} pairs (target <= 1.05x)")


def split(experiments: int, run=None) -> dict[str, float]:
    """Where the CPU of one run goes: the formula model (compiling and evaluating), the sampler,
    the spreadsheet surface (checks, diffs, rules, views), the search agent's own books, and the
    rest (recipe loading, the loop, the store; for plain Optuna, study.optimize's own books).

    Each is counted by thread-time counters around the outermost call of its kind in each thread
    (the agent and the metric run in worker threads, which a sampling profiler of the main
    thread misses); the surface's work for the agent counts as the surface's."""
    import collections
    import threading

    from optuna.samplers import TPESampler

    from overnight.plugins import cell, search, spreadsheet

    spent: collections.Counter = collections.Counter()
    active = threading.local()
    patched = []

    def wrap(owner, name, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            stack = active.__dict__.setdefault("stack", [])
            if label in stack:  # already counted by the outer call
                return original(*args, **kwargs)
            stack.append(label)
            begin = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                seconds = time.thread_time() - begin
                stack.pop()
                spent[label] += seconds
                for outer in set(stack):
                    spent[outer, label] += seconds

        patched.append((owner, name, original))
        setattr(owner, name, timed)

    kinds = {"model": (cell.Model, ("__init__", "add", "calculate")),
             "sampler": (TPESampler, ("infer_relative_search_space", "sample_relative", "sample_independent",
                                      "before_trial", "after_trial")),
             "surface": (spreadsheet.SpreadsheetSurface, ("read", "rules", "problems", "diff", "parameters",
                                                          "view_from", "values_of", "cells", "source")),
             "agent": (search.SearchAgent, ("propose", "observe"))}
    for label, (owner, names) in kinds.items():
        for name in names:
            wrap(owner, name, label)
    models = []
    original_init = cell.Model.__init__

    def init(model, *args, **kwargs):
        models.append(model)
        original_init(model, *args, **kwargs)

    patched.append((cell.Model, "__init__", original_init))
    cell.Model.__init__ = init  # around the timed one: its time still counts as the model's
    try:
        _, cpu = (run or with_overnight)(experiments)
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
    own = spent["agent"] - spent["agent", "sampler"] - spent["agent", "surface"]
    surface = spent["surface"] - spent["model", "surface"]
    return {"cpu": cpu, "model": spent["model"], "sampler": spent["sampler"], "surface": surface, "agent": own,
            "rest": cpu - spent["model"] - spent["sampler"] - surface - own,
            "evaluations": sum(m.evaluations for m in models)}


def splits(experiments: int, count: int) -> dict[str, dict[str, float]]:
    """`split` of each side, in pairs that alternate which goes first: the median of each figure,
    and ("more") the median of each pair's difference, steadier than a difference of medians when
    the machine's speed drifts between pairs."""
    found: dict[str, list[dict]] = {"ours": [], "theirs": []}
    for i in range(count):
        for side in ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours"):
            found[side].append(split(experiments, with_overnight if side == "ours" else with_optuna))
    out = {side: {k: statistics.median(f[k] for f in runs) for k in runs[0]} for side, runs in found.items()}
    out["more"] = {k: statistics.median(a[k] - b[k] for a, b in zip(found["ours"], found["theirs"])) for k in out["ours"]}
    return out


def _suggest(trial, name, d):
    """What a person writes by hand for each kind of parameter."""
    if hasattr(d, "choices"):
        return trial.suggest_categorical(name, d.choices)
    if type(d).__name__ == "IntDistribution":
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--only", choices=("small", "pricing", "command"), action="append")
    args = parser.parse_args(argv)
    only = args.only or ["small", "pricing", "command"]
    if "small" in only:
        for seed in (1, 2):
            f = small_space(seed, 2 * VALUES)
            print(f"small integer space ({VALUES} values, budget {2 * VALUES}, seed {seed}): {f['experiments']} experiments, "
                  f"{f['asks']} asks; agent {f['first']:.2f} ms/exp in the first tenth, {f['last']:.2f} ms/exp in the last; "
                  f"wall {f['wall']:.2f} ms/exp; best {f['best']:g}; stopped: {f['stop']}")
        f = small_space(1, 300, two=True)
        print(f"two integer keys ({VALUES} x 10 values, budget 300, seed 1): {f['experiments']} experiments, "
              f"{f['asks']} asks; agent {f['first']:.2f} ms/exp in the first tenth, {f['last']:.2f} ms/exp in the last "
              f"(TPE's own cost grows with the trials it models); wall {f['wall']:.2f} ms/exp; best {f['best']:g}; "
              f"stopped: {f['stop']}")
        print("target: agent flat <= 10 ms/exp; asks <= experiments + a few")
    if "pricing" in only:
        with_overnight(5), with_optuna(5)  # imports and first compiles are paid by neither pair
        pairs("pricing, 100 trials, in this process", lambda: with_overnight(100), lambda: with_optuna(100), args.pairs)
        found = splits(100, max(3, args.pairs // 2))
        for side, label in (("ours", "overnight"), ("theirs", "the plain study")):
            f = found[side]
            print(f"pricing, {label}, CPU {f['cpu']:.2f} s (medians of {max(3, args.pairs // 2)} runs): formula model "
                  f"{f['model']:.2f} s ({f['evaluations']:.0f} evaluations), sampler {f['sampler']:.2f} s, the spreadsheet "
                  f"surface {f['surface'] * 1000:.0f} ms ({f['surface'] * 10:.2f} ms/exp), the search agent's own books "
                  f"{f['agent'] * 1000:.0f} ms ({f['agent'] * 10:.2f} ms/exp), the rest "
                  f"({'recipe, loop, store' if side == 'ours' else 'recipe, study.optimize'}) {f['rest']:.2f} s")
        d = found["more"]
        print(f"pricing, overnight's CPU beyond the plain study's (median of the pairs' differences): {d['cpu']:+.2f} s: "
              f"formula model {d['model']:+.2f} s ({d['evaluations']:+.0f} evaluations), sampler {d['sampler']:+.2f} s, "
              f"surface {d['surface'] * 1000:+.0f} ms, agent {d['agent'] * 1000:+.0f} ms, rest {d['rest']:+.2f} s")
        # The work both sides do (the formula model, the sampler) counted once, from the plain study:
        # a machine whose speed drifts by a fifth between two runs moves it, and every pair's ratio with it.
        added = d["surface"] + d["agent"] + d["rest"]
        print(f"pricing, what overnight adds to the plain study, the work both do counted once: {added:+.2f} s on the "
              f"plain study's {found['theirs']['cpu']:.2f} s CPU -> {1 + added / found['theirs']['cpu']:.3f}x (target <= 1.05x)")
    if "command" in only:
        pairs("pricing, 100 trials, whole commands", lambda: command(100, True), lambda: command(100, False), args.pairs)
    print(f"load average: {__import__('os').getloadavg()[0]:.1f} on {__import__('os').cpu_count()} CPUs")


if __name__ == "__main__":
    main(sys.argv[1:])
