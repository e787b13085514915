"""False keeps on a pure-noise example metric, with and without paired acceptance.

The task model of the loopback OpenAI-compatible server (reached through litellm
like any model) answers each example "yes" or "no" by a coin, whatever the prompt
says, so no prompt is better than another and every keep is a false one. Two
worlds:

- deterministic: the coin is the hash of the whole prompt (the task model at
  temperature 0: a candidate's answers repeat, but any change of wording flips
  examples at random, as a real model's do);
- noisy: a fresh coin at every call (temperature 0.7: the baseline is measured
  three times for the noise bar, a win is measured again).

The `scripted` agent proposes 100 prompts, each a note added to the baseline,
all of the same length (so simplicity never wins a tie). Each run goes through
the real loop (core.runner, a real store, the `prompt` surface and the `dataset`
metric); printed: the keeps per 100 proposals at each `paired_level` (1 asks
only for more wins than losses; "off" is the keep rule without the paired test).

    python bench/paired_acceptance.py [--proposals 100] [--examples 30] [--levels off,1,0.25,0.05] [--seeds 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-paired")

from tests.support.llm_server import LLMServer  # noqa: E402

BASE = "Answer yes or no: {{ item }}\n"


def write(folder: Path, url: str, world: str, level: str, proposals: int, examples: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    (folder / "prompt.j2").write_text(BASE)
    with open(folder / "examples.jsonl", "w") as f:
        for i in range(examples):
            f.write(json.dumps({"id": f"e{i:03d}", "item": f"item {i}", "label": rng.choice(["yes", "no"])}) + "\n")
    with open(folder / "proposals.jsonl", "w") as f:
        for i in range(proposals):
            f.write(json.dumps({"view": BASE + f"Note {seed:02d}-{i:04d}: think it through.\n", "rationale": f"note {i}"}) + "\n")
    temperature = 0 if world == "deterministic" else 0.7
    paired = "" if level == "off" else f"paired_level = {level}"
    (folder / "recipe.toml").write_text(textwrap.dedent(f"""
        [recipe]
        name = "noise"

        [surface]
        kind = "prompt"
        path = "prompt.j2"
        inputs = ["item"]

        [metric]
        kind = "dataset"
        file = "examples.jsonl"
        expected_field = "label"
        task_model = "openai/coin"
        api_base = "{url}"
        temperature = {temperature}
        holdout = 0.1
        contamination = false

        [agent]
        kind = "scripted"
        file = "proposals.jsonl"

        [budget]
        experiments = {proposals}
        max_failures = 1000
        {paired}
        """))


def coin(world: str, rng: random.Random):
    def reply(request: dict) -> str:
        if world == "deterministic":
            text = json.dumps(request["messages"])
            return "yes" if hashlib.sha256(text.encode()).digest()[0] % 2 else "no"
        return rng.choice(["yes", "no"])
    return reply


def one_run(root: Path, world: str, level: str, proposals: int, examples: int, seed: int) -> tuple[int, int]:
    """(keeps, proposals measured) of one run."""
    from overnight.core import recipe as recipes
    from overnight.core import runner
    from overnight.core.store import Store
    from overnight.sharing import trust

    server = LLMServer().start()
    try:
        server.add_rule(lambda r: r.get("model") == "coin", coin(world, random.Random(seed)))
        folder = root / f"{world}-{level}-{seed}"
        write(folder, server.url, world, level, proposals, examples, seed)
        r = recipes.load(folder)
        from overnight.core import keep

        original = keep.paired_verdict
        if level == "off":  # the keep rule without the paired test
            keep.paired_verdict = lambda *a, **k: None
        store = Store(folder / "overnight.db")
        runner.run(runner.build(r, store, hosts=trust.hosts(r)))  # its own recipe, for its own server
        store.close()
    finally:
        server.stop()
        keep.paired_verdict = original
    conn = sqlite3.connect(folder / "overnight.db")
    counts = dict(conn.execute("select status, count(*) from experiments where seq > 0 group by status").fetchall())
    conn.close()
    return counts.get("keep", 0), sum(counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=100)
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--levels", default="off,1,0.25,0.05")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--worlds", default="deterministic,noisy")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="overnight-paired-"))
    print(f"Pure-noise example metric: {args.examples} examples answered by a coin; {args.proposals} proposals a run, "
          f"{args.seeds} seeds.\n")
    print(f"{'world':<15}{'paired_level':>13}{'false keeps / 100 proposals':>30}")
    for world in args.worlds.split(","):
        for level in args.levels.split(","):
            keeps = made = 0
            for seed in range(args.seeds):
                k, n = one_run(root, world, level, args.proposals, args.examples, seed)
                keeps, made = keeps + k, made + n
            print(f"{world:<15}{level:>13}{100 * keeps / max(made, 1):>30.1f}", flush=True)


if __name__ == "__main__":
    main()
