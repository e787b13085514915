"""Every call priced or refused: the recipe's price, litellm's table, or free on this machine.

Against a loopback server that speaks Anthropic's Messages protocol, the README's own
`anthropic/claude-3-5-haiku-latest` (no price in litellm's table) is refused at `usd = 0`
before any request, and costed from the recipe's `price` once it has one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overnight.core import providers
from overnight.core.budget import Budget, Spend
from overnight.core.errors import OvernightError
from overnight.core.llm import Gateway, ModelConfigError, litellm
from tests.conftest import write
from tests.support.providers import ProviderServer

DATASET = Path(__file__).parent / "data" / "datasets" / "askubuntu_intents.jsonl"
UNPRICED = "anthropic/claude-3-5-haiku-latest"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()


@pytest.fixture
def anthropic(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    server = ProviderServer(answer="Make Update").start()
    yield server
    server.stop()


def recipe(folder: Path, server: ProviderServer, *, usd: float, price: str = "", model: str = UNPRICED) -> Path:
    rows = DATASET.read_text(encoding="utf-8").splitlines()[:6]
    return write(folder, {"prompt.j2": "What does this Ubuntu user want?\nQuestion: {{ text }}\n",
                          "questions.jsonl": "\n".join(rows) + "\n",
                          "proposals.jsonl": json.dumps({"view": "Which intent? Question: {{ text }}\n"}) + "\n",
                          "recipe.toml": f"""
        [recipe]
        name = "haiku"

        [surface]
        kind = "prompt"
        path = "prompt.j2"
        inputs = ["text"]

        [metric]
        kind = "dataset"
        file = "questions.jsonl"
        expected_field = "intent"
        task_model = "{model}"
        api_base = "{server.url}/v1"
        holdout = 0
        {price}

        [agent]
        kind = "scripted"
        file = "proposals.jsonl"

        [budget]
        experiments = 1
        usd = {usd}
    """})


def test_an_unpriced_model_is_refused_before_any_call_naming_the_price_key(cli, workspace, anthropic):
    result = cli("run", recipe(workspace / "r", anthropic, usd=0), "--yes")

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert (f"The model '{UNPRICED}' has no price in litellm's table and does not run on this machine, so [budget] usd "
            "cannot hold its spend: add price = { input = 1.0, output = 5.0 }") in result.output
    assert "to [metric]; nothing was spent." in result.output
    assert anthropic.requests == []


def test_the_recipes_price_costs_each_call_and_the_summary_says_where_it_came_from(cli, workspace, anthropic):
    result = cli("run", recipe(workspace / "r", anthropic, usd=1, price="price = { input = 0.8, output = 4.0 }"), "--yes")

    assert result.exit_code == 0, result.output
    spent = next(line for line in result.output.splitlines() if line.startswith("Spent "))
    usd = float(spent.split("$")[1].split(",")[0])
    assert usd > 0
    assert f"Price {UNPRICED}: $0.8 in, $4 out per million tokens (the recipe)" in result.output
    # The dry run after it answers from the cache, and says so, pricing those answers as fresh.
    plan = cli("run", workspace / "r", "--yes", "--dry-run")
    assert "answers came from the cache: afresh, about $0.0" in plan.output
    assert "the cached answers priced as fresh" in plan.output
    assert f"Price    {UNPRICED}: $0.8 in, $4 out per million tokens (the recipe)" in plan.output


def test_check_says_where_each_price_came_from(cli, workspace, anthropic):
    result = cli("check", recipe(workspace / "r", anthropic, usd=1, model="anthropic/claude-haiku-4-5"), "--yes")

    assert "Price         anthropic/claude-haiku-4-5: $1 in, $5 out per million tokens (litellm's table)" in result.output
    assert "This check spent $0.0" in result.output


def test_a_malformed_price_is_one_sentence(cli, workspace, anthropic):
    result = cli("run", recipe(workspace / "r", anthropic, usd=1, price='price = { input = "cheap" }'), "--yes")

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "price in [metric] (price) must be { input = 1.0, output = 5.0 }" in result.output


@pytest.mark.parametrize("model, api_base, source", [
    ("ollama_chat/llama3.2", None, "free: it runs on this machine"),
    ("ollama/llama3.2", "http://gpu-box.lan:11434", "free: it runs on this machine"),
    ("openai/my-model", "http://127.0.0.1:8000/v1", "free: it runs on this machine"),
    ("hosted_vllm/qwen", "http://localhost:8000/v1", "free: it runs on this machine"),
    ("openai/gpt-4o-mini", "http://127.0.0.1:8000/v1", "litellm's table"),  # the table wins: a proxy may forward it
    ("anthropic/claude-haiku-4-5", None, "litellm's table"),
])
def test_where_a_price_comes_from(model, api_base, source):
    assert providers.price_of(litellm(), model, api_base).source == source


@pytest.mark.parametrize("model, api_base", [
    ("anthropic/claude-3-5-haiku-latest", "http://127.0.0.1:8000"),  # a local Anthropic endpoint is a proxy to a paid host
    ("openai/my-model", "https://models.example.com/v1"),
    ("openai/my-model", "http://10.1.2.3:8000/v1"),
])
def test_a_model_that_is_not_local_and_has_no_price_is_refused(model, api_base, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    g = Gateway(None, Budget(usd=5), Spend())
    with pytest.raises(ModelConfigError, match=r"has no price in litellm's table .* add price = "):
        g.check_model(model, api_base)
    g.check_model(model, api_base, price={"input": 2, "output": 8})
    assert g.price_lines() == [f"{model}: $2 in, $8 out per million tokens (the recipe)"]


def test_a_price_table_must_have_two_numbers():
    with pytest.raises(OvernightError, match=r"price in \[agent\] must be"):
        providers.recipe_price({"input": 1.0}, "[agent]")
    with pytest.raises(OvernightError):
        providers.recipe_price({"input": -1, "output": 2}, "[agent]")
    assert providers.recipe_price({"input": 1, "output": 5}).usd(1_000_000, 100_000) == pytest.approx(1.5)
