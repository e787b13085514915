"""The LLM gateway, through litellm's real client path to the loopback server."""

from __future__ import annotations

import threading
import time

import pytest

from overnight.core.budget import Budget, Spend
from overnight.core.llm import BudgetExceeded, Gateway, ModelConfigError, ModelUnavailable, litellm
from overnight.core.store import Store
from tests.support.llm_server import Reply as ServerReply, count_tokens

KEY = "sk-test-gateway-0123456789"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()  # the slow import, paid once for the module


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "overnight.db")
    yield s
    s.close()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def gateway(store, **budget) -> Gateway:
    g = Gateway(store, Budget(**budget), Spend())
    g.backoff = 0.01  # keep retries quick in tests
    return g


def ask(g: Gateway, server, text="Say hello.", model="openai/task-model", **kw):
    return g.complete(role="task", model=model, api_base=server.url,
                      messages=[{"role": "user", "content": text}], **kw)


def test_a_reply_carries_its_call_with_tokens_and_latency(store, key, llm_server):
    llm_server.default = "Hello there."
    g = gateway(store)

    reply = ask(g, llm_server, temperature=0.0, max_tokens=50)

    assert reply.text == "Hello there." and reply.finish_reason == "stop" and not reply.cached
    call = reply.call
    assert (call.role, call.model) == ("task", "openai/task-model")
    assert call.prompt_tokens == count_tokens("Say hello.") and call.completion_tokens == count_tokens("Hello there.")
    assert call.cost_usd == 0.0  # the loopback model has no price: tokens kept, cost 0
    assert call.seconds > 0 and call.cache_key and not call.error
    assert g.spend.tokens == call.prompt_tokens + call.completion_tokens and g.spend.usd == 0.0
    sent = llm_server.requests[0]
    assert sent["temperature"] == 0.0 and sent["max_tokens"] == 50 and sent["model"] == "task-model"
    assert llm_server.request_headers[0]["authorization"] == f"Bearer {KEY}"


def test_a_priced_model_costs_what_litellm_says(store, key, llm_server):
    g = gateway(store, usd=1.0)

    reply = ask(g, llm_server, model="openai/gpt-4o-mini")

    expected = sum(litellm().cost_per_token(model="gpt-4o-mini", prompt_tokens=reply.call.prompt_tokens,
                                            completion_tokens=reply.call.completion_tokens))
    assert reply.call.cost_usd == pytest.approx(expected) and expected > 0
    assert g.spend.usd == pytest.approx(expected)


def test_an_unchanged_request_is_answered_from_the_cache(store, key, llm_server, tmp_path):
    llm_server.default = "cached answer"
    first = ask(gateway(store), llm_server, temperature=0.0)
    store.record_llm_call(first.call, run_id=None)  # as the loop records a measurement's calls

    g = gateway(store)  # a new process: nothing in memory, only the store
    again = ask(g, llm_server, temperature=0.0)
    assert again.cached and again.text == "cached answer" and llm_server.count == 1
    assert again.call.cached and again.call.cost_usd == 0 and again.call.prompt_tokens == 0
    assert g.spend.tokens == 0

    ask(g, llm_server, temperature=0.5)  # other parameters: another key
    ask(g, llm_server, temperature=0.0, cache=False)  # noise estimates bypass the cache
    assert llm_server.count == 3


def test_a_rate_limit_and_a_server_error_are_retried(store, key, llm_server):
    llm_server.queue(429, 500, "third time lucky")
    g = gateway(store)

    assert ask(g, llm_server).text == "third time lucky"
    assert llm_server.count == 3


def test_the_servers_retry_after_is_waited_out(store, key, llm_server):
    llm_server.queue(ServerReply(status=429, headers={"retry-after-ms": "600"}), "after the wait")
    g = gateway(store)  # its own backoff is 0.01 s: the wait below is the server's

    started = time.monotonic()
    assert ask(g, llm_server).text == "after the wait"
    assert time.monotonic() - started >= 0.6 and llm_server.count == 2


def test_a_call_waiting_to_try_again_leaves_its_slot_to_others(store, key, llm_server):
    llm_server.add_rule("first", ServerReply(status=429, headers={"retry-after": "1"}), times=1)
    g = gateway(store, llm_concurrency=1)
    first = threading.Thread(target=ask, args=(g, llm_server, "first"))
    first.start()
    while llm_server.count == 0:
        time.sleep(0.01)

    started = time.monotonic()
    assert ask(g, llm_server, "second").text == "OK"
    assert time.monotonic() - started < 0.8  # not behind the first call's 1 s wait
    first.join(10)
    assert llm_server.count == 3


def test_a_server_that_keeps_failing_gives_a_clear_error_after_three_tries(store, key, llm_server):
    llm_server.add_rule(None, 500)
    g = gateway(store)

    with pytest.raises(ModelUnavailable, match=r"failed \(500\) for 'openai/task-model' after 3 tries") as caught:
        ask(g, llm_server)
    assert llm_server.count == 3
    assert caught.value.call.error and caught.value.call.model == "openai/task-model"
    assert g.reserved_usd == 0 and g.reserved_tokens == 0


def test_a_refused_key_names_the_variable_and_is_not_retried(store, key, llm_server):
    llm_server.require_key = "another-key"
    g = gateway(store)

    with pytest.raises(ModelConfigError) as caught:
        ask(g, llm_server)
    assert "refused the API key" in caught.value.message and "OPENAI_API_KEY" in caught.value.message
    assert KEY not in caught.value.message and KEY not in caught.value.call.error
    assert llm_server.count == 1


def test_a_hanging_server_times_out(store, key, llm_server):
    llm_server.add_rule(None, hang=True)
    g = gateway(store)
    g.attempts = 2

    with pytest.raises(ModelUnavailable, match=r"no answer within 0.5 s \(2 tries\)"):
        ask(g, llm_server, timeout=0.5)
    assert llm_server.count == 2


def test_a_missing_key_is_named_before_anything_is_sent(store, monkeypatch, llm_server):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    g = gateway(store)

    with pytest.raises(ModelConfigError, match=r"needs the environment variable OPENAI_API_KEY, which is not set"):
        g.check_model("gpt-4o-mini")
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        g.complete(role="agent", model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert g.spend.usd == 0 and g.spend.tokens == 0


def test_a_server_of_your_own_needs_no_key(store, monkeypatch, llm_server):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    g = gateway(store)

    g.check_model("openai/task-model", llm_server.url)
    assert ask(g, llm_server).text == "OK"


def test_an_unknown_model_is_a_clear_error(store, key, llm_server):
    g = gateway(store)
    with pytest.raises(ModelConfigError, match=r"Unknown model 'mystery-model': .*'openai/mystery-model' with api_base"):
        g.check_model("mystery-model")

    llm_server.add_rule(None, 404)
    with pytest.raises(ModelConfigError, match=r"does not know the model 'openai/gone'"):
        ask(g, llm_server, model="openai/gone")
    assert llm_server.count == 1


def test_a_call_that_would_pass_the_usd_cap_is_not_made(store, key, llm_server):
    g = gateway(store, usd=0.0)  # 0: no spend allowed
    with pytest.raises(BudgetExceeded, match=r"Spend cap reached \(\$0\)") as caught:
        ask(g, llm_server, model="openai/gpt-4o-mini")
    assert "raise [budget] usd" in caught.value.message
    assert llm_server.count == 0

    assert ask(g, llm_server).text == "OK"  # a model without a price costs nothing: allowed

    g = gateway(store, usd=0.001)
    g.spend.usd = 0.0009
    with pytest.raises(BudgetExceeded):
        ask(g, llm_server, model="openai/gpt-4o-mini", max_tokens=1000)  # up to $0.0006 more
    assert ask(g, llm_server, model="openai/gpt-4o-mini", max_tokens=20).text == "OK"
    assert llm_server.count == 2


def test_a_call_that_would_pass_the_token_cap_is_not_made(store, key, llm_server):
    g = gateway(store, tokens=100)
    ask(g, llm_server, max_tokens=20)
    with pytest.raises(BudgetExceeded, match=r"Token cap reached \(100\)") as caught:
        ask(g, llm_server, max_tokens=200)
    assert "raise [budget] tokens" in caught.value.message
    assert llm_server.count == 1


def test_calls_in_flight_never_pass_llm_concurrency(store, key, llm_server):
    llm_server.latency = 0.2
    g = gateway(store, llm_concurrency=2)
    threads = [threading.Thread(target=ask, args=(g, llm_server, f"call {i}")) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert llm_server.count == 6
    assert llm_server.max_concurrency == 2


def test_secrets_are_scrubbed_from_the_call(store, key, llm_server):
    llm_server.add_rule(None, lambda request: f"I saw {KEY} in the prompt")
    g = gateway(store)

    reply = ask(g, llm_server, text=f"my key is {KEY}")

    assert KEY not in reply.text and "***" in reply.text  # masked at the source: no plugin's memory holds it
    assert KEY not in str(reply.call.messages) and KEY not in reply.call.response  # nor does the log


def test_a_truncated_reply_says_so_and_is_not_cached(store, key, llm_server):
    llm_server.default = ServerReply("a long answer " * 20)
    g = gateway(store)

    reply = ask(g, llm_server, max_tokens=5)

    assert reply.finish_reason == "length" and reply.call.cache_key == ""
    ask(g, llm_server, max_tokens=5)
    assert llm_server.count == 2


def test_a_server_that_is_not_running_is_named(store, monkeypatch, llm_server):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url = llm_server.url
    llm_server.stop()
    g = gateway(store)

    with pytest.raises(ModelUnavailable, match=rf"Cannot reach the model server at {url} for 'openai/task-model' "
                                               r"after 3 tries \(.*\); is the server running\?"):
        g.complete(role="agent", model="openai/task-model", api_base=url, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("model, own, sent", [("custom_openai/task-model", None, f"Bearer {KEY}"),
                                              ("perplexity/task-model", "pplx-own-key", "Bearer pplx-own-key"),
                                              ("openai/task-model", None, f"Bearer {KEY}")])
def test_a_recipes_api_base_gets_the_key_the_trust_question_names(store, key, llm_server, monkeypatch, model, own, sent):
    """custom_openai and text-completion-openai send OPENAI_API_KEY, which the trust question named
    CUSTOM_OPENAI_API_KEY; and litellm sends OPENAI_API_KEY to an api_base when a provider's own key
    is unset (perplexity, deepinfra, ...). The key sent is overnight's choice: the one it names."""
    from overnight.core.providers import key_for, key_to_send
    from overnight.sharing.reach import where

    provider = model.split("/")[0]
    if own:
        monkeypatch.setenv(key_for(provider), own)
    g = gateway(store, usd=1.0)
    g.check_model(model, llm_server.url, price={"input": 1.0, "output": 1.0})
    llm_server.default = "Hello."
    ask(g, llm_server, model=model)
    assert llm_server.request_headers[0]["authorization"] == sent
    assert f"sends {key_for(provider)} and your prompt to {llm_server.url} (model {model})" in where(model, llm_server.url).line()
    assert where("text-completion-openai/m", llm_server.url).key == "OPENAI_API_KEY"  # its /v1/completions: no test server
    monkeypatch.delenv("PERPLEXITYAI_API_KEY", raising=False)
    assert key_to_send("perplexity") == "none" and key_to_send("bedrock") is None  # never OPENAI_API_KEY's
