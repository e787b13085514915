"""What overnight must know of each provider beyond litellm's naming: price, locality, quirks.

A call is priced or refused: its price comes from the recipe (`price = { input = ..,
output = .. }`, dollars per million tokens, in the section that names the model), from
litellm's table, or it is free because the model runs on this machine (an `ollama*/`
model, or an OpenAI-compatible server whose api_base is this machine). A model that is
none of these cannot be held to `[budget] usd`, so the run refuses it before any call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import OvernightError

# Providers whose server may be your own: on this machine, their calls cost nothing.
# Anthropic, Gemini and the rest are not here: a local api_base for them is a proxy to a paid host.
LOCAL_CAPABLE = {"openai", "openai_like", "custom_openai", "hosted_vllm", "lm_studio", "llamafile", "ollama",
                 "ollama_chat", "vllm", "llamacpp"}
# The environment variable whose key a request to a provider carries (else PROVIDER_API_KEY; None:
# none). To a recipe's api_base overnight sends this one key itself, or "none": litellm, finding a
# provider's own key unset, sends OPENAI_API_KEY for custom_openai, perplexity, deepinfra, cerebras
# and other OpenAI-compatible providers, which would hand that key to a host the trust question
# showed with another key's name.
KEYS = {"openai": "OPENAI_API_KEY", "custom_openai": "OPENAI_API_KEY", "text-completion-openai": "OPENAI_API_KEY",
        "together_ai": "TOGETHERAI_API_KEY", "perplexity": "PERPLEXITYAI_API_KEY", "azure": "AZURE_API_KEY",
        "bedrock": "AWS_SECRET_ACCESS_KEY", "vertex_ai": "GOOGLE_APPLICATION_CREDENTIALS",
        "ollama": None, "ollama_chat": None, "hosted_vllm": None, "lm_studio": None, "llamafile": None}
NOT_BEARER = {"bedrock", "vertex_ai"}  # signed or OAuth requests: their keys are no Bearer header to pass


# Ollama's own model options (https://github.com/ollama/ollama/blob/main/docs/modelfile.md): passed through as they are.
OLLAMA_OPTIONS = {"num_ctx", "num_predict", "num_keep", "num_gpu", "num_thread", "num_batch", "top_k", "top_p", "min_p",
                  "typical_p", "repeat_penalty", "repeat_last_n", "presence_penalty", "frequency_penalty", "mirostat",
                  "mirostat_eta", "mirostat_tau", "seed", "stop", "tfs_z", "keep_alive"}
REASONING_MAX_TOKENS = 16000  # room to think: a reasoning model spends its max_tokens on thoughts first


@dataclass(frozen=True)
class Price:
    input: float  # dollars per million prompt tokens
    output: float  # dollars per million reply tokens
    source: str  # "litellm's table", "the recipe", "free: it runs on this machine"

    def usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6

    def describe(self) -> str:
        if self.source.startswith("free"):
            return self.source
        return f"${self.input:g} in, ${self.output:g} out per million tokens ({self.source})"


FREE = Price(0.0, 0.0, "free: it runs on this machine")


def provider_of(model: str) -> str:
    return model.split("/", 1)[0].lower() if "/" in model else ""


def on_this_machine(api_base: str | None) -> bool:
    host = (urlsplit(api_base).hostname or "") if api_base else ""
    if not host:
        return False
    if host in ("localhost", "0.0.0.0", "::1") or host.startswith("127."):
        return True
    # Imported here: only an api_base that is no loopback address gets this far, and `recipes list`
    # imports this module for every recipe it describes.
    import socket

    return host in {socket.gethostname(), socket.getfqdn()}


def is_local(model: str, api_base: str | None, provider: str | None = None) -> bool:
    provider = provider or provider_of(model)
    if provider in ("ollama", "ollama_chat"):  # Ollama runs on a machine of your own, wherever it is
        return True
    return provider in LOCAL_CAPABLE and on_this_machine(api_base)


def recipe_price(value, where: str = "the model's section") -> Price | None:
    """The recipe's `price` table, checked: two non-negative numbers, input and output."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"input", "output"} or not all(
            isinstance(value[k], (int, float)) and not isinstance(value[k], bool) and value[k] >= 0 for k in value):
        raise OvernightError(f"price in {where} must be {{ input = 1.0, output = 5.0 }}: dollars per million "
                             f"prompt and reply tokens, two numbers of 0 or more.")
    return Price(float(value["input"]), float(value["output"]), "the recipe")


def table_price(lit, model: str) -> Price | None:
    try:
        info = lit.get_model_info(model)
    except Exception:  # litellm raises for a model it has not mapped
        return None
    inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if inp is None or out is None:
        return None
    return Price(float(inp) * 1e6, float(out) * 1e6, "litellm's table")


def price_of(lit, model: str, api_base: str | None, given: Price | None = None, provider: str | None = None) -> Price | None:
    """The recipe's price, else litellm's (unless the model runs here), else free when local, else None."""
    if given is not None:
        return given
    found = table_price(lit, model)
    if found is not None and (found.input or found.output):
        return found
    if is_local(model, api_base, provider):
        return FREE
    return found  # the table's own zero, or no price at all


def unpriced(model: str, where: str | None = None, key: str = "price") -> OvernightError:
    section = where or "the recipe section that names it"
    return OvernightError(
        f"The model {model!r} has no price in litellm's table and does not run on this machine, so [budget] usd "
        f"cannot hold its spend: add {key} = {{ input = 1.0, output = 5.0 }} (dollars per million tokens, "
        f"the provider's own figures) to {section}; nothing was spent.")


def key_for(provider: str | None) -> str | None:
    """The environment variable holding the key a request to `provider` carries."""
    if not provider:
        return None
    return KEYS.get(provider, f"{provider.upper().replace('-', '_')}_API_KEY")


def key_to_send(provider: str | None) -> str | None:
    """The key overnight passes with a request to a recipe's api_base: its provider's own, or "none"
    (a local server that wants no key still needs one); None where litellm signs the request."""
    if provider in NOT_BEARER:
        return None
    variable = key_for(provider)
    return (os.environ.get(variable) if variable else None) or "none"


def api_base_for(model: str, api_base: str | None, provider: str | None = None) -> str | None:
    """Anthropic's client adds `/v1/messages` itself: an api_base ending in /v1 would call /v1/v1/messages."""
    if api_base and (provider or provider_of(model)) == "anthropic":
        trimmed = api_base.rstrip("/")
        if trimmed.endswith("/v1"):
            return trimmed[: -len("/v1")]
    return api_base


def check_options(model: str, options: dict | None) -> dict:
    """Ollama's `options` table, allowlisted: a typo is one sentence, not a silently ignored key."""
    if not options:
        return {}
    if provider_of(model) not in ("ollama", "ollama_chat"):
        raise OvernightError(f"options is for Ollama models (ollama_chat/NAME); {model!r} is not one: remove options.")
    unknown = sorted(set(options) - OLLAMA_OPTIONS)
    if unknown:
        raise OvernightError(f"options has {unknown[0]!r}, which is not an Ollama option; "
                             f"known: {', '.join(sorted(OLLAMA_OPTIONS))}.")
    return dict(options)


def reasons(lit, model: str) -> bool:
    """True when litellm's model info says the model thinks before it answers."""
    try:
        return bool(lit.supports_reasoning(model=model))
    except Exception:
        return False


def default_max_tokens(lit, model: str, chosen: int | None, default: int) -> int:
    """The recipe's max_tokens when it set one; else the plugin's default, raised for a reasoning model."""
    if chosen is not None:
        return chosen
    return max(default, REASONING_MAX_TOKENS) if reasons(lit, model) else default
