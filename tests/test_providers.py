"""Each provider the README names, through litellm's real client to a loopback server that
speaks its protocol; and timeouts that hold against a server that answers in 20 s or never.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from overnight.core import llm as gateway_module, providers
from overnight.core.budget import Budget, Spend
from overnight.core.errors import OvernightError
from overnight.core.llm import Gateway, ModelUnavailable, ServerSilent, litellm
from tests.support.providers import ProviderServer

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Which intent?"}]


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    s = ProviderServer(answer="Make Update").start()
    yield s
    s.stop()


def gateway(**budget) -> Gateway:
    g = Gateway(None, Budget(**{"usd": 1.0, **budget}), Spend())
    g.backoff = 0.01
    return g


def test_anthropic_with_an_api_base_ending_in_v1_reaches_v1_messages(server):
    g = gateway()
    reply = g.complete(role="task", model="anthropic/claude-haiku-4-5", messages=MESSAGES, api_base=server.url + "/v1",
                       max_tokens=50)
    assert reply.text == "Make Update"
    assert [r["path"] for r in server.requests] == ["/v1/messages"]
    assert server.requests[0]["body"]["system"][0]["text"] == "Answer briefly."
    assert reply.call.cost_usd > 0  # priced from litellm's table


def test_anthropic_thinking_block_leaves_the_answer(server):
    server.thinking = "The user wants to update."
    reply = gateway().complete(role="task", model="anthropic/claude-haiku-4-5", messages=MESSAGES,
                               api_base=server.url, max_tokens=50)
    assert reply.text == "Make Update"


def test_ollama_chat_keeps_roles_and_passes_allowlisted_options(server):
    g = gateway(usd=0)  # local: free, so allowed at usd = 0
    reply = g.complete(role="task", model="ollama_chat/llama3.2", messages=MESSAGES, api_base=server.url,
                       max_tokens=50, **providers.check_options("ollama_chat/llama3.2", {"num_ctx": 8192}))
    sent = server.requests[0]
    assert reply.text == "Make Update" and sent["path"] == "/api/chat"
    assert [m["role"] for m in sent["body"]["messages"]] == ["system", "user"]
    assert sent["body"]["options"]["num_ctx"] == 8192
    assert g.price_lines() == ["ollama_chat/llama3.2: free: it runs on this machine"]


def test_ollama_generate_merges_the_roles_into_one_prompt(server):
    gateway(usd=0).complete(role="task", model="ollama/llama3.2", messages=MESSAGES, api_base=server.url)
    sent = server.requests[0]
    assert sent["path"] == "/api/generate" and "Answer briefly." in sent["body"]["prompt"]


def test_an_unknown_ollama_option_is_one_sentence():
    with pytest.raises(OvernightError, match=r"options has 'num_context', which is not an Ollama option; known: .*num_ctx"):
        providers.check_options("ollama_chat/llama3.2", {"num_context": 8192})
    with pytest.raises(OvernightError, match=r"options is for Ollama models"):
        providers.check_options("openai/gpt-4o-mini", {"num_ctx": 8192})


def test_an_openai_compatible_reasoning_reply_leaves_the_answer(server):
    server.thinking = "Let me think about it."
    reply = gateway().complete(role="task", model="openai/deepseek-r1", messages=MESSAGES, api_base=server.url + "/v1")
    assert reply.text == "Make Update"


def test_a_reasoning_model_gets_room_to_think_and_empty_answers_are_named(server):
    lit = litellm()
    assert providers.default_max_tokens(lit, "anthropic/claude-haiku-4-5", None, 256) == providers.REASONING_MAX_TOKENS
    assert providers.default_max_tokens(lit, "openai/gpt-4o-mini", None, 256) == 256
    assert providers.default_max_tokens(lit, "anthropic/claude-haiku-4-5", 20, 256) == 20  # the recipe's own wins
    server.cut = True
    g = gateway()
    reply = g.complete(role="task", model="openai/deepseek-r1", messages=MESSAGES, api_base=server.url + "/v1", max_tokens=20)
    assert reply.text == "" and reply.finish_reason == "length"
    assert g.notes() == ["1 answers of openai/deepseek-r1 came back empty, cut off at max_tokens: the model spent them "
                         "thinking; raise max_tokens in [metric]."]


# -- timeouts ---------------------------------------------------------------------------


def test_a_call_in_flight_ends_at_the_deadline_is_not_retried_and_its_prompt_is_billed(server):
    server.delay = 20  # answers in 20 s
    g = gateway()
    g.check_model("openai/slow", server.url + "/v1", price={"input": 1.0, "output": 5.0})
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="got no answer") as caught:
        g.complete(role="task", model="openai/slow", messages=MESSAGES, api_base=server.url + "/v1",
                   deadline=started + 2)
    took = time.monotonic() - started
    assert 1.5 < took < 5  # the 2 s deadline, and slack for a loaded machine (never the 20 s answer)
    assert len(server.requests) == 1  # no try after the deadline
    call = caught.value.call
    assert call.prompt_tokens > 0 and call.cost_usd == pytest.approx(call.prompt_tokens / 1e6)
    assert g.spend.tokens == call.prompt_tokens and g.timed_out == 1
    assert "1 model calls got no answer in time" in g.notes()[0]


def test_the_runs_minutes_cut_a_call_in_flight(server):
    server.hang = True
    g = gateway(minutes=0.05)  # 3 s
    started = time.monotonic()
    with pytest.raises(ModelUnavailable):
        g.complete(role="task", model="openai/local", messages=MESSAGES, api_base=server.url + "/v1", timeout=60)
    assert time.monotonic() - started < 7  # 3 s left of the run, never the 60 s timeout


def test_a_server_that_never_answers_stops_the_run_with_one_sentence(server, monkeypatch):
    server.hang = True
    monkeypatch.setattr(gateway_module, "SILENT_STOP", 2.0)
    g = gateway()
    g.attempts = 1
    with pytest.raises(ModelUnavailable):
        g.complete(role="task", model="openai/local", messages=MESSAGES, api_base=server.url + "/v1", timeout=1)
    with pytest.raises(ServerSilent, match=r"The model server at .* has answered no call to 'openai/local' for \d+ "
                                            r"minutes; the run stops: is the server running\?"):
        g.complete(role="task", model="openai/local", messages=MESSAGES, api_base=server.url + "/v1", timeout=1)


def test_the_default_timeout_is_a_minute():
    assert gateway_module.DEFAULT_TIMEOUT == 60.0


def test_a_measurement_whose_time_is_up_leaves_no_call_running(server, tmp_path, monkeypatch):
    """The dataset metric against a 20 s server with 4 s per measurement: a timeout, and every call
    thread gone within a second or two of the limit (nothing retried, nothing sent after it)."""
    from overnight.core import recipe as recipes
    from overnight.core.contracts import MeasureRequest
    from overnight.core.executor import LocalExecutor
    from overnight.core.runner import build
    from overnight.core.store import Store
    from tests.conftest import write
    from tests.test_pricing import DATASET

    server.delay = 20
    rows = DATASET.read_text(encoding="utf-8").splitlines()[:8]
    write(tmp_path / "r", {"prompt.j2": "Which intent? {{ text }}\n", "questions.jsonl": "\n".join(rows) + "\n",
                           "proposals.jsonl": "", "recipe.toml": f"""
        [recipe]
        name = "slow"
        [surface]
        kind = "prompt"
        path = "prompt.j2"
        inputs = ["text"]
        [metric]
        kind = "dataset"
        file = "questions.jsonl"
        expected_field = "intent"
        task_model = "openai/slow"
        api_base = "{server.url}/v1"
        holdout = 0
        concurrency = 4
        price = {{ input = 1.0, output = 5.0 }}
        [agent]
        kind = "scripted"
        file = "proposals.jsonl"
        [budget]
        usd = 1
    """})
    setup = build(recipes.load(tmp_path / "r"), Store(tmp_path / "overnight.db"))
    started = time.monotonic()
    outcome = LocalExecutor(setup.surface, setup.objective).measure(setup.surface.read(), MeasureRequest(4))
    assert outcome.measurement.status == "timeout"
    returned = time.monotonic()
    assert returned - started < 4 + 2 + 5  # the limit, the grace to collect the calls, a loaded machine's slack
    for thread in threading.enumerate():
        if thread.name.startswith("overnight-llm"):
            thread.join(5)
    assert time.monotonic() - returned < 2  # no call left running after the measurement
    sent = len(server.requests)
    assert 1 <= sent <= 4  # at most the four in flight; none retried, none started after the limit
    assert setup.llm.timed_out == sent and setup.spend.tokens > 0 and setup.spend.usd > 0
    logged = outcome.measurement.llm_calls  # the timed-out calls are in the log, with what they sent and cost
    assert len(logged) == sent and all(c.error and c.prompt_tokens > 0 and c.cost_usd > 0 for c in logged)


# -- something moves during long calls ----------------------------------------------------


def test_progress_shows_what_is_in_flight_while_calls_are_long(server):
    import io

    from overnight.cli.progress import Progress
    from overnight.core.events import ExperimentFinished, ExperimentStarted

    server.delay = 3
    g = gateway()
    out = io.StringIO()  # not a terminal: plain lines, here every 0.5 s instead of 30
    display = Progress(Budget(), stream=out, activity=g.activity)
    display.TICK_PIPED = 0.5
    display(ExperimentStarted(1, 4, "a clearer prompt"))
    g.expect(3)
    calls = [threading.Thread(target=g.complete, kwargs=dict(role="task", model="openai/local", messages=MESSAGES,
                                                               api_base=server.url + "/v1")) for _ in range(3)]
    for c in calls:
        c.start()
    waited = time.monotonic()
    while "in flight" not in out.getvalue() or " 0 in flight" in out.getvalue().splitlines()[-1]:
        assert time.monotonic() - waited < 2.5
        time.sleep(0.1)
    during = out.getvalue()
    for c in calls:
        c.join()
    display(ExperimentFinished(1, 4, "keep", "better", 1.0, 1.0))
    display.close()
    assert re.search(r"^\.\.\.   #4 for \d s, 0 of 3 model calls answered, 3 in flight$", during, re.M)
    assert "#4    keep" in out.getvalue()
    assert display.in_flight() == ""


# -- the README's models ---------------------------------------------------------------------


def _readme_models() -> list[dict]:
    import re
    import tomllib
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## With a language model"):text.index("### Greedy or reflective search")]
    blocks = [tomllib.loads(b) for b in re.findall(r"^```toml\n(.*?)^```", section, re.S | re.M)]
    agents = [b["agent"] for b in blocks if "agent" in b]
    commented = re.findall(r'model = "[^"]+"\s+# or "([^"]+)"', section)
    return agents + [{"model": m} for m in commented]


PATHS = {"anthropic": "/v1/messages", "ollama_chat": "/api/chat", "ollama": "/api/generate", "openai": "/chat/completions"}


@pytest.mark.parametrize("agent", _readme_models(), ids=lambda a: a["model"])
def test_every_model_the_readme_names_is_priced_and_answers_in_its_own_protocol(agent, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    model = agent["model"]
    provider = providers.provider_of(model) or "openai"
    g = gateway(usd=2)
    # Each is sent to the loopback server; a hosted model's price must not depend on that.
    assert providers.price_of(litellm(), model, agent.get("api_base"), providers.recipe_price(agent.get("price"))) is not None
    base = server.url + ("/v1" if provider in ("openai", "anthropic") else "")
    g.check_model(model, base, price=agent.get("price"))
    reply = g.complete(role="agent", model=model, messages=MESSAGES, api_base=base,
                       **providers.check_options(model, agent.get("options")))
    assert reply.text == "Make Update"
    assert server.requests[-1]["path"].endswith(PATHS[provider])
    if agent.get("options"):
        assert server.requests[-1]["body"]["options"]["num_ctx"] == agent["options"]["num_ctx"]


def test_check_and_the_run_name_max_tokens_when_a_reasoning_model_answers_nothing(cli, workspace, server):
    from tests.test_pricing import recipe

    server.cut = True  # every answer: thought only, cut off at max_tokens, empty
    folder = recipe(workspace / "r", server, usd=1, model="openai/deepseek-r1", price="max_tokens = 20")
    checked = cli("check", folder, "--yes")
    assert re.search(r"\d+ answers of openai/deepseek-r1 came back empty, cut off at max_tokens \(it spent them thinking\)\.",
                     checked.output)
    assert "Raise max_tokens in [metric]" in checked.output
    ran = cli("run", folder, "--yes")
    assert re.search(r"^\d+ answers of openai/deepseek-r1 came back empty, cut off at max_tokens: the model spent them "
                     r"thinking; raise max_tokens in \[metric\]\.$", ran.output, re.M)
