"""Greedy against reflective search on a simulated world, for the same budget of task-model calls.

The world (tests/support/sim_world.py, served by the loopback OpenAI-compatible
server and reached through litellm like any model) is a model of prompt search:
each example is an item with a code word, and the task model answers it right
only when the prompt holds the rule for the item's category. Most categories
need one rule, some need two (a group rule and the group's label), and two
pairs of rules conflict (with both written, the later wins and the other
category fails), so not every example can be right at once. The agent model
reads the failing examples in its prompt and proposes adding the rule for one of
them; sometimes the rule has a wrong label, sometimes it also deletes another
rule, and for a two-rule category it writes both rules only sometimes. Asked for
a bolder change it writes the rules of up to three failing categories at once;
asked to merge two versions it keeps the rules of both. Its draws are seeded.

Each run goes through the real loop (core.runner, a real store, the `prompt`
surface and the `dataset` metric) and is stopped once it has spent the budget
of task-model calls (only calls made count: the store's cache answers repeats);
what it found within the budget is read from the store. Strategies:

- greedy: the `llm` agent as it always was, editing the best;
- reflective: `strategy = "reflective"` with what today's loop shows an agent
  (the best's failing examples, and at most five failing examples of each other
  experiment);
- reflective+screen: the same with `screen = 8`: each proposal (but a merge) is
  measured on 8 train examples first, against its parent, and on all of them
  only when it does not lose there;
- reflective+scores (on request): the agent told every train example's score by a
  shim here; the loop now fills `Attempt.scores` itself, so it matches `reflective`.

Printed per strategy and seed: the best train accuracy within the budget, its
holdout accuracy (the world's own answer function on the held-out examples, so no
extra calls), the calls spent until the best first reached 90% of the best any
strategy found on that seed, and the calls until its holdout accuracy first
reached greedy's final one; for a screening run, the share of task-model calls
screening saved (what the screened-out proposals would have cost on all train
examples, over what was spent plus that).

    python bench/reflective_search.py [--seeds 3] [--budget 40] [--strategies greedy,reflective,reflective+scores]

`--budget` is in full train measurements (budget x train examples task calls).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-sim-world")

from tests.support.llm_server import LLMServer  # noqa: E402

# name -> the agent's keys; "+scores" runs get the shim below.
STRATEGIES = {
    "greedy": {"strategy": "greedy"},
    "reflective": {"strategy": "reflective"},
    "reflective+scores": {"strategy": "reflective"},
    "reflective+screen": {"strategy": "reflective", "screen": 8},
    # Ablations, on request (--strategies): which part does the work.
    "no-plateau": {"strategy": "reflective", "plateau": 0},
    "no-plateau+scores": {"strategy": "reflective", "plateau": 0},
    "frontier-only+scores": {"strategy": "reflective", "plateau": 0, "merge_every": 0},
}
DEFAULT = "greedy,reflective,reflective+screen"
WORLD = dict(categories=12, two_rule=3, conflicts=2, per_category=4)


def recipe(world, folder: Path, url: str, strategy: str, seed: int) -> None:
    keys = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in STRATEGIES[strategy].items())
    world.write_recipe(folder, url, name=f"sim-{strategy.replace('+', '-')}-{seed}", metric=f"seed = {seed}",
                       agent=f"seed = {seed}\n{keys}",
                       budget="experiments = 100000\nmax_failures = 1000\npaired_level = 0.25")


class Recording:
    """The run's executor, noting each train measurement's per-example scores and stopping the
    run (through the store, as `overnight stop` does) once the budget of task calls is spent."""

    def __init__(self, inner, world, store, name: str, calls: int):
        self.inner, self.world, self.store, self.name, self.calls = inner, world, store, name, calls
        self.scores: dict[str, dict[str, float]] = {}

    def measure(self, view, request, guards=True):
        from overnight.core.contracts import digest

        outcome = self.inner.measure(view, request, guards)
        m = outcome.measurement
        if m.ok and request.split == "train":
            self.scores[digest(view)] = {e.id: e.score for e in m.examples if e.split == "train"}
        if self.world.task_calls >= self.calls:
            run = self.store.latest_run(self.name)
            if run:
                self.store.update_run(run["id"], control="stop")
        return outcome


class Telling:
    """The agent, told each experiment's per-example train scores (what the loop will pass)."""

    def __init__(self, agent, recording: Recording):
        self.agent, self.recording, self.views = agent, recording, {}

    def __getattr__(self, name):
        return getattr(self.agent, name)

    def propose(self, context):
        proposal = self.agent.propose(context)
        if proposal is not None and proposal.view is not None:
            self.views[proposal.meta.get("proposal")] = proposal.view
        return proposal

    def observe(self, attempt):
        from overnight.core.contracts import digest

        view = self.views.pop(attempt.meta.get("proposal"), None)
        if view is not None and attempt.score is not None:
            attempt.scores = dict(self.recording.scores.get(digest(view), {}))
        self.agent.observe(attempt)


def one_run(root: Path, strategy: str, seed: int, budget: int) -> dict:
    from overnight.core import recipe as recipes
    from overnight.core import runner
    from overnight.core.executor import LocalExecutor
    from overnight.core.store import Store
    from overnight.sharing import trust

    server = LLMServer().start()
    try:
        world = server.simulate(seed=seed, **WORLD)
        folder = root / f"{strategy.replace('+', '-')}-{seed}"
        recipe(world, folder, server.url, strategy, seed)
        r = recipes.load(folder)
        split = {str(rec.fields["id"]): s for rec, s in r.metrics[0].build(folder).load()}
        train = {i for i, s in split.items() if s == "train"}
        holdout = {i for i, s in split.items() if s == "holdout"}
        calls = budget * len(train)
        store = Store(folder / "overnight.db")
        setup = runner.build(r, store, hosts=trust.hosts(r))  # its own recipe, for its own server
        setup.executor = Recording(LocalExecutor(setup.surface, setup.objective), world, store, r.name, calls)
        if strategy.endswith("+scores"):
            setup.agent = Telling(setup.agent, setup.executor)
        started = time.monotonic()
        runner.run(setup)
        seconds = time.monotonic() - started
        store.close()
        return trajectory(folder / "overnight.db", world, holdout, calls) | {"seconds": seconds, "train_n": len(train)}
    finally:
        server.stop()


def trajectory(db: Path, world, holdout: set[str], calls: int) -> dict:
    """The best so far after each experiment, against the task calls spent, within the budget."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    spent = {r["experiment_id"]: r["n"] for r in conn.execute(
        "select experiment_id, count(*) n from llm_calls where role = 'task' and cached = 0 group by experiment_id")}
    train_n = conn.execute("select count(*) from example_results er join experiments e on e.id = er.experiment_id "
                           "where e.seq = 0 and er.split = 'train'").fetchone()[0]
    points, total, best, modes, saved = [], 0, None, Counter(), 0
    for e in conn.execute("select e.id, e.seq, e.status, e.score, e.meta, e.reason, c.view from experiments e "
                          "left join candidates c on c.digest = e.candidate order by e.seq"):
        total += spent.get(e["id"], 0)
        if total > calls:
            break
        if (e["reason"] or "").startswith("screened out"):
            saved += train_n - spent.get(e["id"], 0)
        if e["status"] in ("baseline", "keep"):
            best = (e["score"], world.accuracy(e["view"], holdout))
        mode = json.loads(e["meta"] or "{}").get("mode")
        if mode in ("merge", "plateau"):
            modes[mode, e["status"] == "keep"] += 1
        points.append((total, best[0], best[1], e["status"]))
    conn.close()
    return {"points": points, "train": points[-1][1], "holdout": points[-1][2], "experiments": len(points) - 1,
            "calls": points[-1][0], "modes": modes, "saved": saved / (points[-1][0] + saved) if saved else 0.0}


def first(points, test) -> int | None:
    return next((calls for calls, train, held, _ in points if test(train, held)), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=40, help="task calls, in full train measurements")
    parser.add_argument("--strategies", default=DEFAULT, help=f"of: {', '.join(STRATEGIES)}")
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    root = Path(tempfile.mkdtemp(prefix="overnight-reflective-"))
    results: dict[tuple[str, int], dict] = {}
    for seed in range(args.seeds):
        for strategy in strategies:
            results[strategy, seed] = one_run(root, strategy, seed, args.budget)
    n = results[strategies[0], 0]["train_n"]
    print(f"Simulated world: {WORLD['categories']} categories ({WORLD['two_rule']} need two rules, "
          f"{WORLD['conflicts']} conflicting pairs), {WORLD['per_category']} examples each; {n} train examples.")
    print(f"Budget: {args.budget * n} task-model calls per run ({args.budget} full train measurements), "
          f"{args.seeds} seeds.\n")
    print(f"{'strategy':<22}{'seed':>5}{'exps':>6}{'train':>8}{'holdout':>9}{'to 90%':>9}{'to greedy':>11}"
          f"{'merges':>9}{'plateau':>9}{'saved':>7}{'secs':>7}")
    for strategy in strategies:
        for seed in range(args.seeds):
            r = results[strategy, seed]
            top = max(results[s, seed]["train"] for s in strategies)
            goal = results["greedy", seed]["holdout"] if "greedy" in strategies else None
            to90 = first(r["points"], lambda train, held: train >= 0.9 * top - 1e-9)
            togreedy = first(r["points"], lambda train, held: held >= goal - 1e-9) if goal is not None else None
            r["to90"], r["togreedy"] = to90, togreedy
            m = r["modes"]
            print(f"{strategy:<22}{seed:>5}{r['experiments']:>6}{r['train']:>8.3f}{r['holdout']:>9.3f}"
                  f"{_calls(to90):>9}{_calls(togreedy):>11}{_kept(m, 'merge'):>9}{_kept(m, 'plateau'):>9}{r['saved']:>7.0%}{r['seconds']:>7.1f}")
    print()
    print(f"{'strategy':<22}{'mean train':>11}{'mean holdout':>13}{'median to 90%':>15}{'median to greedy':>18}{'calls saved':>13}")
    for strategy in strategies:
        rs = [results[strategy, s] for s in range(args.seeds)]
        print(f"{strategy:<22}{statistics.fmean(r['train'] for r in rs):>11.3f}{statistics.fmean(r['holdout'] for r in rs):>13.3f}"
              f"{_median([r['to90'] for r in rs]):>15}{_median([r['togreedy'] for r in rs]):>18}"
              f"{statistics.fmean(r['saved'] for r in rs):>13.0%}")
    print("\n'merges', 'plateau': proposals of that mode, kept/made; 'saved': the share of task calls screening saved;"
          "\n'to 90%': task calls until the best reached 90% of the best train accuracy any strategy found on that seed;"
          "\n'to greedy': task calls until its holdout accuracy reached greedy's final one ('-': not within the budget).")


def _kept(modes: Counter, mode: str) -> str:
    return f"{modes[mode, True]}/{modes[mode, True] + modes[mode, False]}"


def _calls(value: int | None) -> str:
    return "-" if value is None else str(value)


def _median(values: list[int | None]) -> str:
    # A run that never got there counts as past the budget: the median is '-' when most did not.
    known = sorted(v if v is not None else float("inf") for v in values)
    mid = statistics.median(known)
    return "-" if mid == float("inf") else f"{mid:g}"


if __name__ == "__main__":
    main()
