"""The one door to language models: budget, cache, concurrency, retries and the call log.

A plugin that declares `uses_llm = True` finds the run's gateway in `self.llm` (set
before `prepare`; the only way a plugin reaches a model). Every call a plugin makes
(the agent's, the task model's, the judge's) goes through `Gateway.complete`, so the
spend caps hold across all of them, at most
`[budget] llm_concurrency` calls are in flight, and each call comes back with an
`LLMCall` ready for the store. The gateway never writes to the store itself: the
loop records `Proposal.llm_calls` and `Measurement.llm_calls` with the experiment
they belong to, and the cache key travels on the `LLMCall`.

litellm is imported on first use only: it takes seconds to import, and most
commands never need it. Retries are tenacity's; not litellm's own (`num_retries`),
which wait inside the call and so would hold a concurrency slot while they sleep.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import providers
from .budget import Budget, Spend
from .contracts import LLMCall
from .errors import BudgetExceeded, LLMError  # noqa: F401 (both: imported from here too)
from .secrets import is_secret_name, redact, scrub

# Set to 1 to let litellm fetch its current price table at import (it uses the bundled one otherwise).
REMOTE_COSTS_ENV = "OVERNIGHT_LITELLM_REMOTE_COSTS"
ATTEMPTS = 3  # tries per call when the server answers 429, 5xx or times out
BACKOFF = 1.0  # the most seconds before the second try (a random share of it); doubled for each further try
MAX_WAIT = 60.0  # the longest wait between tries, the server's retry-after included
DEFAULT_TIMEOUT = 60.0  # seconds one try may take when the caller does not say
SILENT_STOP = 180.0  # a server that answered nothing for this long (every try timed out) stops the run
LAST_TRY = 1.0  # no new try with less time than this left before the deadline
REPLY_ESTIMATE = 512  # reply tokens assumed by the budget check when max_tokens is not set
# Providers that speak the OpenAI protocol: with an api_base of your own, a key is optional.
OPENAI_COMPATIBLE = {"openai", "openai_like", "custom_openai", "hosted_vllm", "lm_studio", "llamafile", "ollama", "ollama_chat"}


class ModelConfigError(LLMError):
    """The model cannot be used as configured (missing or refused key, unknown model): fatal."""


class ModelUnavailable(LLMError):
    """The server kept failing (rate limit, server error, timeout) or refused this one request."""


class ServerSilent(ModelConfigError):
    """The server has answered no call for minutes: the run stops rather than wait on it all night."""


@dataclass
class Reply:
    text: str
    finish_reason: str  # "stop", "length", ...
    call: LLMCall  # ready to attach to a Measurement's or Proposal's llm_calls
    cached: bool = False


_litellm = None
_import_lock = threading.Lock()


def litellm():
    """The litellm module, imported once, quietly, with the bundled price table."""
    global _litellm
    with _import_lock:
        if _litellm is None:
            if os.environ.get(REMOTE_COSTS_ENV, "").strip().lower() not in ("1", "true", "yes"):
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm as module

            module.suppress_debug_info = True
            module.telemetry = False
            _litellm = module
    return _litellm


def cache_key(model: str, messages: list[dict], api_base: str | None, params: dict) -> str:
    blob = json.dumps({"model": model, "api_base": api_base or "", "messages": messages, "params": params},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Gateway:
    def __init__(self, store, budget: Budget, spend: Spend):
        self.store = store
        self.budget = budget
        self.spend = spend
        self.attempts = ATTEMPTS
        self.backoff = BACKOFF
        self.slots = threading.BoundedSemaphore(budget.llm_concurrency)
        self.lock = threading.Lock()
        # Spend reserved by calls in flight, so parallel calls cannot jointly pass a cap.
        self.reserved_usd = 0.0
        self.reserved_tokens = 0
        # Replies of this process by cache key: a re-measurement in flight need not wait for the store.
        self.memo: dict[str, tuple[str, str]] = {}
        self.checked: set[tuple[str, str | None]] = set()
        self.prices: dict[str, providers.Price] = {}  # model -> its price, as check_model found it
        self.silent_since: dict[tuple[str, str | None], float] = {}  # servers whose last tries all timed out
        self.timed_out = 0  # calls that got no answer: billed for their prompts all the same
        self.timed_out_tokens = 0
        self.timed_out_usd = 0.0
        self.cut_empty: dict[tuple[str, str], int] = {}  # (role, model) -> answers empty at max_tokens
        self.in_flight = 0  # what a progress display polls while calls are long (see `activity`)
        self.answered = 0
        self.expected = 0

    # -- before the run -----------------------------------------------------------

    def check_model(self, model: str, api_base: str | None = None, price: dict | None = None,
                    where: str | None = None, key: str = "price") -> None:
        """Fails before anything is spent when the model is unknown, unpriced or its key is missing.

        `price` is the recipe's `{input, output}` (dollars per million tokens) for this model;
        `where` names the recipe section that sets it, for the error."""
        if (model, api_base) in self.checked:
            return
        refuse_foreign_host(self, model, api_base)
        provider = self._provider(model, api_base)
        self._check_price(model, api_base, provider, price, where, key)
        missing = [k for k in self._missing(model, api_base) if is_secret_name(k)]
        if missing and not (api_base and provider in OPENAI_COMPATIBLE):
            raise ModelConfigError(
                f"The model {model!r} needs the environment variable {missing[0]}, which is not set: "
                f"export {missing[0]}=... before the run (nothing was spent)."
            )
        self.checked.add((model, api_base))

    def _check_price(self, model, api_base, provider, price, where, key) -> None:
        """Every call priced or refused: a model [budget] usd cannot hold is not used at all."""
        given = providers.recipe_price(price, f"{where or 'the recipe'} ({key})")
        found = providers.price_of(litellm(), model, api_base, given, provider)
        if found is None:
            raise ModelConfigError(providers.unpriced(model, where, key).message)
        with self.lock:
            self.prices.setdefault(model, found)

    def price(self, model: str, api_base: str | None = None) -> providers.Price | None:
        with self.lock:
            known = self.prices.get(model)
        return known or providers.price_of(litellm(), model, api_base)

    def price_lines(self) -> list[str]:
        """Where each model's price came from, for check, the dry run and the summary."""
        with self.lock:
            return [f"{model}: {p.describe()}" for model, p in sorted(self.prices.items())]

    def expect(self, calls: int) -> None:
        """A metric says how many calls its measurement makes, so progress can show "12 of 40"."""
        with self.lock:
            self.expected += calls

    def activity(self) -> dict:
        """Calls answered (cache hits too), expected and in flight, for a display that polls."""
        with self.lock:
            return {"answered": self.answered, "expected": self.expected, "in_flight": self.in_flight}

    def notes(self) -> list[str]:
        """What the spend figures alone do not say: calls that timed out, answers lost to max_tokens."""
        out = []
        with self.lock:
            if self.timed_out:
                out.append(f"{self.timed_out} model calls got no answer in time; their prompts ({self.timed_out_tokens} "
                           f"tokens, about ${self.timed_out_usd:.4f}) are counted above, as a provider bills them.")
            for (role, model), n in sorted(self.cut_empty.items()):
                where = "[agent]" if role == "agent" else "[metric]"
                out.append(f"{n} answers of {model} came back empty, cut off at max_tokens: the model spent them "
                           f"thinking; raise max_tokens in {where}.")
        return out

    def _provider(self, model: str, api_base: str | None) -> str:
        lit = litellm()
        try:
            return lit.get_llm_provider(model, api_base=api_base)[1]
        except Exception:  # litellm raises a bare BadRequestError for a name it cannot place
            raise ModelConfigError(
                f"Unknown model {model!r}: litellm cannot tell which provider serves it; write it as "
                f"'provider/name', such as 'gpt-4o-mini', 'anthropic/claude-3-5-haiku-latest', 'ollama/llama3.2', "
                f"or 'openai/{model.split('/')[-1]}' with api_base for an OpenAI-compatible server."
            ) from None

    def _missing(self, model: str, api_base: str | None) -> list[str]:
        try:
            return list(litellm().validate_environment(model, api_base=api_base).get("missing_keys") or [])
        except Exception:
            return []

    def key_variable(self, model: str, api_base: str | None = None) -> str:
        """The environment variable that holds the key for this model, for error messages."""
        missing = [k for k in self._missing(model, api_base) if is_secret_name(k)]
        if missing:
            return missing[0]
        try:
            provider = self._provider(model, api_base)
        except ModelConfigError:
            return "the provider's API key variable"
        return providers.key_for(provider) or "the provider's API key variable"

    # -- one call -------------------------------------------------------------------

    def complete(self, *, role: str, model: str, messages: list[dict], api_base: str | None = None,
                 temperature: float | None = None, max_tokens: int | None = None, cache: bool = True,
                 timeout: float | None = None, deadline: float | None = None, **params: Any) -> Reply:
        """One chat completion: from the cache when allowed, else within budget, with retries.

        timeout: seconds one try may take (DEFAULT_TIMEOUT). deadline: a `time.monotonic()`
        after which nothing is tried again and the try in flight gives up (a measurement's end);
        the end of `[budget] minutes` is one too."""
        self.check_model(model, api_base)
        params = {k: v for k, v in dict(params, temperature=temperature, max_tokens=max_tokens).items() if v is not None}
        key = cache_key(model, messages, api_base, params)
        if cache:
            hit = self._cached(key, role, model, messages)
            if hit:
                with self.lock:
                    self.answered += 1
                return hit
        tokens, usd = self.estimate(model, messages, max_tokens, api_base=api_base)
        self._reserve(model, tokens, usd)
        with self.lock:
            self.in_flight += 1
        try:
            reply = self._call(role, model, messages, api_base, timeout, params, key, self._deadline(deadline))
            with self.lock:
                self.answered += 1
            return reply
        finally:
            with self.lock:
                self.reserved_tokens -= tokens
                self.reserved_usd -= usd
                self.in_flight -= 1

    def _cached(self, key: str, role: str, model: str, messages: list[dict]) -> Reply | None:
        with self.lock:
            memo = self.memo.get(key)
        if memo is None and self.store is not None:
            row = self.store.cached_response(key)
            memo = (row["response"], "stop") if row else None
        if memo is None:
            return None
        call = LLMCall(role=role, model=model, messages=redact(messages), response=memo[0], cached=True, cache_key=key)
        return Reply(memo[0], memo[1], call, cached=True)

    def estimate(self, model: str, messages: list[dict], max_tokens: int | None = None,
                 api_base: str | None = None) -> tuple[int, float]:
        """Tokens and dollars this call may take: the prompt exactly, the reply at its cap."""
        prompt = self.prompt_tokens(model, messages)
        reply = max_tokens or REPLY_ESTIMATE
        return prompt + reply, self._usd(model, api_base, prompt, reply)

    def prompt_tokens(self, model: str, messages: list[dict]) -> int:
        try:
            return int(litellm().token_counter(model=model, messages=messages))
        except Exception:
            return sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1

    def _usd(self, model: str, api_base: str | None, prompt: int, reply: int) -> float:
        price = self.price(model, api_base)
        return price.usd(prompt, reply) if price is not None else 0.0

    def fresh_cost(self, calls) -> tuple[int, float]:
        """What cached calls would take answered afresh: an estimate never counts a cache hit as free."""
        tokens, usd = 0, 0.0
        for c in calls:
            if not c.cached:
                continue
            prompt = self.prompt_tokens(c.model, c.messages)
            reply = self.prompt_tokens(c.model, [{"role": "assistant", "content": c.response or ""}])
            tokens += prompt + reply
            usd += self._usd(c.model, None, prompt, reply)
        return tokens, usd

    def _deadline(self, deadline: float | None) -> float | None:
        """The earlier of the caller's deadline and the end of `[budget] minutes`."""
        if self.budget.minutes is not None:
            end = time.monotonic() + self.budget.minutes * 60 - self.spend.seconds
            deadline = end if deadline is None else min(deadline, end)
        return deadline

    def _reserve(self, model: str, tokens: int, usd: float) -> None:
        b, s = self.budget, self.spend
        with self.lock:
            if b.tokens is not None and s.tokens + self.reserved_tokens + tokens > b.tokens:
                raise BudgetExceeded(
                    f"token cap reached ({b.tokens}): a call to {model} of up to {tokens} tokens would pass it "
                    f"({s.tokens} used)", key="tokens",
                )
            if usd > 0 and s.usd + self.reserved_usd + usd > b.usd:
                raise BudgetExceeded(
                    f"spend cap reached (${b.usd:g}): a call to {model} estimated at ${usd:.4g} would pass it "
                    f"(${s.usd:.4g} spent)"
                )
            self.reserved_tokens += tokens
            self.reserved_usd += usd

    def _call(self, role, model, messages, api_base, timeout, params, key, deadline=None) -> Reply:
        lit = litellm()
        per_try = timeout or DEFAULT_TIMEOUT
        kwargs = dict(params, model=model, messages=messages, num_retries=0, max_retries=0)
        if api_base:  # the key is overnight's choice, never litellm's fallback (providers.KEYS)
            kwargs["api_base"] = providers.api_base_for(model, api_base)
            api_key = providers.key_to_send(self._provider(model, api_base))
            if api_key is not None:
                kwargs["api_key"] = api_key
        started, tries = time.monotonic(), 0

        def once():
            nonlocal started, tries
            with self.slots:  # held for the call only, never while waiting to try again
                started = time.monotonic()
                left = per_try if deadline is None else min(per_try, deadline - started)
                if left <= 0:
                    raise lit.Timeout(message="no time left before the deadline", model=model, llm_provider="")
                tries += 1
                return lit.completion(**dict(kwargs, timeout=left))

        try:
            response = self._retrying(deadline)(once)
        except Exception as exc:  # litellm's exceptions, from the last try, sorted by _translate
            error = self._translate(exc, model, api_base, per_try)
            error.call = LLMCall(role=role, model=model, messages=redact(messages), cache_key=key,
                                 seconds=time.monotonic() - started, error=scrub(error.message))
            if isinstance(exc, lit.Timeout):
                error = self._timed_out(error, model, api_base, messages, tries)
                # Cut by the caller's deadline, not by the server: the measurement's time is up.
                error.past_deadline = deadline is not None and time.monotonic() >= deadline - LAST_TRY
            raise error from None
        with self.lock:
            self.silent_since.pop((model, api_base), None)
        return self._reply(lit, response, role, model, messages, key, time.monotonic() - started, api_base)

    def _timed_out(self, error: LLMError, model, api_base, messages, tries: int) -> LLMError:
        """A call with no answer still sent its prompt (a provider bills it): counted, and a server
        silent for SILENT_STOP seconds ends the run with one sentence."""
        prompt = self.prompt_tokens(model, messages) * tries
        usd = self._usd(model, api_base, prompt, 0)
        self.spend.add(usd=usd, tokens=prompt)
        error.call.prompt_tokens, error.call.cost_usd = prompt, usd
        now = time.monotonic()
        with self.lock:
            self.timed_out += 1
            self.timed_out_tokens += prompt
            self.timed_out_usd += usd
            since = self.silent_since.setdefault((model, api_base), now - (error.call.seconds or 0.0))
        if now - since >= SILENT_STOP:
            where = f"the model server at {api_base}" if api_base else "the model server"
            silent = ServerSilent(f"{where[0].upper() + where[1:]} has answered no call to {model!r} for "
                                  f"{(now - since) / 60:.0f} minutes; the run stops: is the server running?")
            silent.call = error.call
            return silent
        return error

    def _retrying(self, deadline: float | None = None):
        """Tries again only what a later try can fix (a rate limit, a server error, a timeout),
        and never once the deadline is near: a measurement whose time is up sends nothing more."""
        import tenacity

        backoff = tenacity.wait_random_exponential(multiplier=self.backoff, max=MAX_WAIT)

        def wait(state) -> float:
            after = _retry_after(state.outcome.exception())
            return backoff(state) if after is None else after

        def late(state) -> bool:
            return deadline is not None and deadline - time.monotonic() < LAST_TRY

        return tenacity.Retrying(stop=tenacity.stop_after_attempt(self.attempts) | late, wait=wait,
                                 retry=tenacity.retry_if_exception(_retryable), reraise=True)

    def _reply(self, lit, response, role, model, messages, key, seconds, api_base=None) -> Reply:
        choice = response.choices[0]
        text = choice.message.content or ""
        finish = choice.finish_reason or "stop"
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        usd = self._reply_cost(lit, response, model, api_base, prompt_tokens, completion_tokens)
        self.spend.add(usd=usd, tokens=prompt_tokens + completion_tokens)
        if finish == "stop":
            with self.lock:
                self.memo[key] = (text, finish)
        elif finish == "length" and not text.strip():
            with self.lock:
                self.cut_empty[(role, model)] = self.cut_empty.get((role, model), 0) + 1
        call = LLMCall(
            role=role, model=model, messages=redact(messages), response=scrub(text),
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=usd,
            seconds=seconds, cache_key=key if finish == "stop" else "",
        )
        # Masked here, at the source: an agent's own memory of its replies (the reflective frontier,
        # its tried hypotheses) never holds a secret a model echoed.
        return Reply(scrub(text), finish, call)

    def _reply_cost(self, lit, response, model, api_base, prompt_tokens: int, completion_tokens: int) -> float:
        """The recipe's price when it set one; else litellm's own reckoning; a local model is free."""
        price = self.price(model, api_base)
        if price is None or price.source != "litellm's table":
            return price.usd(prompt_tokens, completion_tokens) if price is not None else 0.0
        try:
            return float(lit.completion_cost(completion_response=response) or 0.0)
        except Exception:
            return price.usd(prompt_tokens, completion_tokens)

    def _translate(self, exc: Exception, model: str, api_base: str | None, timeout: float) -> LLMError:
        lit = litellm()
        where = f"the model server at {api_base}" if api_base else "the model server"
        detail = scrub(_first_line(str(exc)))
        if isinstance(exc, (lit.AuthenticationError, lit.PermissionDeniedError)):
            var = self.key_variable(model, api_base)
            state = "is not set" if not os.environ.get(var) else "is set"
            return ModelConfigError(f"{where[0].upper() + where[1:]} refused the API key for {model!r} "
                                    f"(environment variable {var}, which {state}).")
        if isinstance(exc, lit.NotFoundError):
            return ModelConfigError(f"{where[0].upper() + where[1:]} does not know the model {model!r}: {detail}")
        if isinstance(exc, lit.Timeout):
            return ModelUnavailable(f"The call to {model!r} got no answer within {timeout:g} s ({self.attempts} tries).")
        if isinstance(exc, lit.RateLimitError):
            return ModelUnavailable(f"{where[0].upper() + where[1:]} kept answering 'rate limit' (429) for {model!r} "
                                    f"after {self.attempts} tries.")
        if isinstance(exc, lit.ContextWindowExceededError):
            return ModelUnavailable(f"The request is too long for {model!r}: {detail}")
        if isinstance(exc, lit.BadRequestError) and "LLM Provider NOT provided" in str(exc):
            return ModelConfigError(f"Unknown model {model!r}: write it as 'provider/name'.")
        if isinstance(exc, lit.BadRequestError):
            return ModelUnavailable(f"{where[0].upper() + where[1:]} rejected the request to {model!r}: {detail}")
        if isinstance(exc, lit.APIConnectionError) or re.search(r"connection (error|refused)|connect", detail, re.I):
            # litellm reports a refused connection as a 500; say what it is.
            return ModelUnavailable(f"Cannot reach {where} for {model!r} after {self.attempts} tries ({detail}); "
                                    f"is the server running?")
        status = getattr(exc, "status_code", None)
        code = f" ({status})" if isinstance(status, int) else ""
        return ModelUnavailable(f"{where[0].upper() + where[1:]} failed{code} for {model!r} after "
                                f"{self.attempts} tries: {detail}")


def refuse_foreign_host(gateway: Gateway, model: str, api_base: str | None) -> None:
    """A key from the environment goes to its provider's own host, or to an api_base the person
    trusted this recipe with (`trusted_hosts`: (model, api_base) pairs, set by core.setup.build)."""
    trusted = getattr(gateway, "trusted_hosts", None)
    if not api_base or trusted is None or (model, api_base) in trusted:
        return
    try:
        variable = providers.key_for(gateway._provider(model, api_base))
    except ModelConfigError:  # a model litellm cannot place fails in check_model with its own sentence
        return
    if variable and os.environ.get(variable):
        raise ModelConfigError(
            f"Not sending {variable} to {api_base} (model {model!r}): the recipe was not trusted with that host, "
            f"so nothing was sent; review it with `overnight recipes trust`."
        )


def _retryable(exc: Exception) -> bool:
    lit = litellm()
    if isinstance(exc, (lit.RateLimitError, lit.Timeout, lit.APIConnectionError, lit.InternalServerError,
                        lit.ServiceUnavailableError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status >= 500


def _retry_after(exc: BaseException | None) -> float | None:
    """The seconds the server asked us to wait (retry-after-ms or retry-after), at most MAX_WAIT."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or getattr(exc, "litellm_response_headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            value = headers.get(name)
        except Exception:
            value = None
        if value is not None:
            try:
                return min(MAX_WAIT, max(0.0, float(value) * scale))
            except ValueError:
                pass
    return None


def _first_line(text: str) -> str:
    text = text.strip().splitlines()[0] if text.strip() else "no detail"
    # litellm prefixes its own class names: "litellm.InternalServerError: InternalServerError: OpenAIException - ..."
    if " - " in text:
        text = text.split(" - ", 1)[1]
    return text[:300]
