"""Throughput of the loop with the `llm` agent, parallel = 1 against parallel = 8.

The agent talks to the loopback OpenAI-compatible server (tests/support/llm_server.py)
through litellm's real client path, with 200 ms of latency per call; the metric is
the in-process `text-stats` word count, so the figures measure the loop and the
gateway, not the metric. Target: parallel = 8 at least 6x the throughput of 1.

    python bench/parallel_llm.py [--experiments 40] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.llm_server import LLMServer  # noqa: E402


def recipe(folder: Path, url: str, parallel: int, experiments: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "note.txt").write_text("A short note.\n")
    (folder / "recipe.toml").write_text(textwrap.dedent(f"""
        [recipe]
        name = "bench-parallel-{parallel}"

        [surface]
        kind = "text"
        path = "note.txt"

        [metric]
        kind = "text-stats"
        stat = "words"
        goal = "maximize"

        [agent]
        kind = "llm"
        model = "openai/bench-model"
        api_base = "{url}"
        max_tokens = 200

        [budget]
        experiments = {experiments}
        parallel = {parallel}
        llm_concurrency = {max(8, parallel)}
        """))
    return folder


def one_run(server: LLMServer, workdir: Path, parallel: int, experiments: int) -> tuple[float, dict]:
    from overnight.core import recipe as recipes
    from overnight.core.runner import build, run
    from overnight.core.store import Store
    from overnight.sharing import trust

    folder = recipe(workdir / f"p{parallel}", server.url, parallel, experiments)
    store = Store(workdir / f"p{parallel}.db")
    loaded = recipes.load(folder)
    setup = build(loaded, store, hosts=trust.hosts(loaded))  # its own recipe, for its own server
    started = time.monotonic()
    summary = run(setup)
    seconds = time.monotonic() - started
    store.close()
    return seconds, summary.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")

    from overnight.core.llm import litellm

    litellm()  # the import is paid before the clock starts
    counter = itertools.count(1)
    with LLMServer(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        # Every answer is a new, longer note, so each experiment is measured (no duplicates).
        server.default = lambda request: (
            "HYPOTHESIS: a longer note scores more words\n```\nA short note."
            + " more" * next(counter) + "\n```\n"
        )
        figures = {}
        for parallel in (1, 8):
            seconds, counts = one_run(server, Path(tmp), parallel, args.experiments)
            done = sum(n for status, n in counts.items() if status != "baseline")
            figures[parallel] = done / seconds
            print(f"parallel={parallel}: {done} experiments in {seconds:.2f} s = {figures[parallel]:.2f} experiments/s "
                  f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); "
                  f"at most {server.max_concurrency} calls in flight")
            server.reset()  # fresh counts for the next run; the default answer stays
        ratio = figures[8] / figures[1]
        verdict = "meets" if ratio >= 6 else "misses"
        print(f"ratio: {ratio:.2f}x ({verdict} the 6x target) with {args.latency * 1000:.0f} ms per call")


if __name__ == "__main__":
    main()
