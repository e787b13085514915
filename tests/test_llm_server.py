"""The loopback OpenAI-compatible server, exercised through litellm over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import urllib.request
from pathlib import Path

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm  # noqa: E402
import pytest  # noqa: E402

from tests.support.fixtures import llm_server  # noqa: E402,F401
from tests.support.llm_server import LLMServer, count_tokens  # noqa: E402

litellm.suppress_debug_info = True

MODEL = "openai/task-model"
CAPTURES = Path("/work/shared/data/openai")


def ask(server: LLMServer, content: str, **kwargs):
    kwargs.setdefault("num_retries", 0)
    return litellm.completion(
        model=MODEL,
        api_base=server.url,
        api_key="sk-test",
        messages=[{"role": "user", "content": content}],
        **kwargs,
    )


def test_plain_reply_with_usage(llm_server):
    llm_server.default = "The answer is forty-two."

    response = ask(llm_server, "What is the answer to everything?")

    choice = response.choices[0]
    assert choice.message.content == "The answer is forty-two."
    assert choice.finish_reason == "stop"
    assert response.id.startswith("chatcmpl-")
    assert response.usage.prompt_tokens == count_tokens("What is the answer to everything?")
    assert response.usage.completion_tokens == count_tokens("The answer is forty-two.")
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    # The server saw exactly what litellm sent: the provider prefix is stripped.
    assert llm_server.count == 1
    assert llm_server.requests[0]["model"] == "task-model"
    assert llm_server.requests[0]["messages"] == [
        {"role": "user", "content": "What is the answer to everything?"}
    ]
    assert llm_server.request_headers[0]["authorization"] == "Bearer sk-test"


def test_streaming_reply_is_assembled_by_litellm(llm_server):
    text = "I'm unable to provide real-time weather updates. To get the weather, use an app."
    llm_server.add_rule("weather", text)

    chunks = list(ask(llm_server, "What's the weather in Paris?", stream=True,
                      stream_options={"include_usage": True}))

    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 5  # really streamed piece by piece
    assert "".join(deltas) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    built = litellm.stream_chunk_builder(chunks, messages=[{"role": "user", "content": "x"}])
    assert built.choices[0].message.content == text
    assert built.usage.completion_tokens == count_tokens(text)
    assert built.usage.prompt_tokens == count_tokens("What's the weather in Paris?")
    assert llm_server.requests[0]["stream"] is True


def test_reply_is_chosen_by_request_content(llm_server):
    llm_server.default = "I don't know."
    llm_server.add_rule("capital of France", "Paris.")
    llm_server.add_rule(re.compile(r"\b\d+ \+ \d+\b"), lambda req: "Sum: " + str(
        sum(int(n) for n in re.findall(r"\d+", req["messages"][-1]["content"]))))
    llm_server.add_rule(lambda req: req.get("temperature") == 0, "cold and exact")
    once = llm_server.add_rule("tell me a joke", "Knock knock.", times=1)

    assert ask(llm_server, "What is the capital of France?").choices[0].message.content == "Paris."
    assert ask(llm_server, "What is 2 + 40?").choices[0].message.content == "Sum: 42"
    assert ask(llm_server, "Anything", temperature=0).choices[0].message.content == "cold and exact"
    assert ask(llm_server, "Please tell me a joke").choices[0].message.content == "Knock knock."
    assert ask(llm_server, "Please tell me a joke").choices[0].message.content == "I don't know."
    assert once.hits == 1 and once.remaining == 0
    assert llm_server.count == 5
    assert llm_server.prompts[1] == "What is 2 + 40?"


def test_finish_reason_length(llm_server):
    llm_server.add_rule("essay", "An essay that was cut", finish_reason="length")
    response = ask(llm_server, "Write an essay")
    assert response.choices[0].finish_reason == "length"
    assert response.choices[0].message.content == "An essay that was cut"

    # max_tokens truncates a long reply the way a real model would.
    llm_server.default = "one two three four five six seven eight nine ten"
    response = ask(llm_server, "Count", max_tokens=4)
    assert response.choices[0].finish_reason == "length"
    assert response.choices[0].message.content == "one two three"
    assert response.usage.completion_tokens <= 4


def test_wrong_key_raises_authentication_error(llm_server):
    llm_server.require_key = "sk-the-right-one"
    with pytest.raises(litellm.AuthenticationError, match="Incorrect API key"):
        ask(llm_server, "hello")
    assert llm_server.count == 1  # litellm does not retry a 401

    llm_server.require_key = "sk-test"
    assert ask(llm_server, "hello").choices[0].message.content == "OK"


def test_rate_limit_raises_rate_limit_error(llm_server):
    llm_server.add_rule("hello", status=429)
    with pytest.raises(litellm.RateLimitError):
        ask(llm_server, "hello", max_retries=0)
    assert llm_server.count == 1


def test_server_error_raises_then_queue_recovers(llm_server):
    llm_server.queue(500)
    with pytest.raises(litellm.InternalServerError, match="The server had an error"):
        ask(llm_server, "hello")

    # The first call fails with 500; the SDK's own retry gets the next reply.
    llm_server.queue(500, "recovered")
    response = ask(llm_server, "hello", num_retries=None, max_retries=1)
    assert response.choices[0].message.content == "recovered"
    assert llm_server.count == 3
    assert llm_server.queued == 0


def test_hanging_reply_times_out(llm_server):
    llm_server.add_rule("hello", "never sent", hang=True)
    started = time.monotonic()
    with pytest.raises(litellm.Timeout):
        ask(llm_server, "hello", timeout=1, max_retries=0)
    assert time.monotonic() - started < 3
    assert llm_server.count == 1


def test_stop_wakes_a_hanging_request():
    server = LLMServer().start()
    server.add_rule(None, hang=True)
    outcome = {}

    def call():
        try:
            ask(server, "hello", timeout=30, max_retries=0)
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while server.count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    thread.join(5)
    assert not thread.is_alive()
    # The connection closes without a reply; litellm maps openai's
    # APIConnectionError("Connection error.") to InternalServerError.
    assert isinstance(outcome.get("error"), (litellm.InternalServerError, litellm.APIConnectionError))
    assert "Connection error" in str(outcome["error"])


def test_parallel_requests_overlap(llm_server):
    latency = 0.2
    llm_server.latency = latency

    async def eight_calls():
        return await asyncio.gather(*[
            litellm.acompletion(model=MODEL, api_base=llm_server.url, api_key="sk-test",
                                messages=[{"role": "user", "content": f"call {i}"}], num_retries=0)
            for i in range(8)
        ])

    started = time.monotonic()
    responses = asyncio.run(eight_calls())
    elapsed = time.monotonic() - started

    assert [r.choices[0].message.content for r in responses] == ["OK"] * 8
    assert elapsed < 4 * latency
    assert llm_server.max_concurrency > 1
    assert sorted(llm_server.prompts) == sorted(f"call {i}" for i in range(8))


def test_wire_format_matches_the_openai_capture(llm_server):
    """The raw SSE bytes have the same shape as a real captured stream."""
    llm_server.default = "Hello there."
    body = json.dumps({"model": "task-model", "stream": True, "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(llm_server.url + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode()
    assert raw.endswith("data: [DONE]\n\n")
    events = [json.loads(e[len("data: "):]) for e in raw.split("\n\n") if e and e != "data: [DONE]"]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert events[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] > 0

    capture = CAPTURES / "openai_python_stream_text.sse"
    if capture.exists():
        real = [json.loads(e[len("data: "):]) for e in capture.read_text().split("\n\n")
                if e.startswith("data: {")]
        assert [sorted(e) for e in events] == [sorted(real[0])] * (len(events) - 1) + [sorted(real[-1])]
        assert sorted(events[1]["choices"][0]) == sorted(real[1]["choices"][0])
        assert sorted(events[-1]["usage"]) == sorted(real[-1]["usage"])

    with urllib.request.urlopen(llm_server.url + "/models", timeout=5) as response:
        assert [m["id"] for m in json.load(response)["data"]] == ["task-model"]
