"""How long `overnight check` takes on every bundled recipe: offline, or against the loopback LLM server.

Run: python bench/check_recipes.py [NAME ...]. Prints one line per recipe (seconds, exit code,
verdict) and asserts nothing. Target: under a minute each.

The LLM recipes talk to tests/support/llm_server.py through litellm's real client
(OPENAI_BASE_URL points there): the triage model answers a ticket's category when the
prompt names it, and the judge gives 8 to a text of 5 to 150 words, 3 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.llm_server import LLMServer, prompt_text  # noqa: E402


def tickets() -> dict[str, str]:
    path = ROOT / "recipes" / "triage" / "tickets.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["body"]: r["category"] for r in rows}


def reply(categories: dict[str, str]):
    def answer(request) -> str:
        text = prompt_text(request)
        graded = re.search(r"<<<\n(.*?)\n>>>", text, re.S)
        if graded is not None or "SCORE:" in text:
            words = len((graded.group(1) if graded else "").split())
            return f"Reads fine.\nSCORE: {8 if 5 <= words <= 150 else 3}"
        for body, category in categories.items():
            if body in text:
                return category if category in text.replace(body, "") else "other"
        return "OK"

    return answer


def main(names: list[str]) -> None:
    from overnight.sharing.library import bundled

    names = names or [e.name for e in bundled()]
    server = LLMServer(default=reply(tickets()))
    server.start()
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-check-0123456789", "OPENAI_BASE_URL": server.url,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    print(f"{'recipe':<16} {'seconds':>8}  exit  verdict")
    try:
        with tempfile.TemporaryDirectory(prefix="overnight-bench-") as folder:
            for name in names:
                start = time.monotonic()
                done = subprocess.run([sys.executable, "-m", "overnight.cli.main", "check", name, "--yes", "--db", f"{folder}/bench.db"],
                                      cwd=folder, env=env, capture_output=True, text=True)
                seconds = time.monotonic() - start
                verdict = re.search(r"^Verdict: (\w+)", done.stdout, re.M)
                why = verdict.group(1) if verdict else (done.stderr.strip().splitlines() or ["?"])[-1][:90]
                print(f"{name:<16} {seconds:>8.1f}  {done.returncode:>4}  {why}")
    finally:
        server.stop()
    print(f"({server.count} requests to the loopback server)")


if __name__ == "__main__":
    main(sys.argv[1:])
