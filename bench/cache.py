"""How many model calls it takes to measure an unchanged prompt again. Target: 0.

Run: python bench/cache.py. Prints figures and asserts nothing.

The bundled `triage` recipe is copied to a temporary folder and pointed at the
loopback server (tests/support/llm_server.py) through litellm's real client. Its
prompt is measured on train once (every ticket is a call), then again four ways:
  - again in the same run (the gateway's replies of this process),
  - again in a later session (a fresh gateway that finds the replies in the store),
  - again with cache = False (a re-measurement that estimates noise: it must ask),
  - a changed prompt (new messages: it must ask).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.llm_server import LLMServer  # noqa: E402


def main() -> None:
    import json

    import tomlkit

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-cache-0123456789")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from overnight.core import recipe as recipes
    from overnight.core.budget import Spend
    from overnight.core.contracts import MeasureRequest
    from overnight.core.executor import LocalExecutor
    from overnight.core.llm import Gateway
    from overnight.core.runner import build
    from overnight.core.store import Store
    from overnight.sharing import trust

    rows = [json.loads(line) for line in (ROOT / "recipes/triage/tickets.jsonl").read_text().splitlines()]
    labels = {r["subject"]: r["category"] for r in rows}

    def task_model(request) -> str:
        subject = re.search(r"^Subject: (.*)$", request["messages"][-1]["content"], re.MULTILINE).group(1)
        return labels[subject]

    server = LLMServer(default=task_model)
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="overnight-bench-cache-") as tmp:
            folder = Path(tmp) / "triage"
            shutil.copytree(ROOT / "recipes" / "triage", folder)
            doc = tomlkit.parse((folder / "recipe.toml").read_text())
            doc["metric"]["api_base"] = doc["agent"]["api_base"] = server.url
            (folder / "recipe.toml").write_text(tomlkit.dumps(doc))
            recipe = recipes.load(folder)
            store = Store(Path(tmp) / "overnight.db")
            setup = build(recipe, store, hosts=trust.hosts(recipe))  # its own recipe, for its own server
            view = setup.surface.read()
            executor = LocalExecutor(setup.surface, setup.objective)

            def measure(text: str, gateway, cache: bool = True):
                for metric in setup.objective.all_metrics():
                    metric.llm = gateway  # the gateway a plugin calls models through
                before, start = server.count, time.perf_counter()
                m = executor.measure(text, MeasureRequest(120, cache=cache)).measurement
                for call in m.llm_calls:  # as the loop records them, so a later session finds them
                    store.record_llm_call(call, run_id=None)
                return m, server.count - before, time.perf_counter() - start

            print(f"{'measurement':<44} {'calls':>5} {'seconds':>8}  score")
            first, calls, seconds = measure(view, setup.llm)
            print(f"{'first, unchanged prompt (train)':<44} {calls:>5} {seconds:>8.2f}  {first.value:.4f}")
            same = None
            for label, gateway, text, cache in (
                ("again, same run", setup.llm, view, True),
                ("again, a later session (store cache)", Gateway(store, recipe.budget, Spend()), view, True),
                ("again, cache = false (noise estimate)", setup.llm, view, False),
                ("a changed prompt", setup.llm, view.replace("Category:", "Label:"), True),
            ):
                m, calls, seconds = measure(text, gateway, cache)
                same = calls if same is None else same
                print(f"{label:<44} {calls:>5} {seconds:>8.2f}  {m.value:.4f}")
            print(f"\nLLM calls to re-measure an unchanged prompt: {same} (target 0)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
