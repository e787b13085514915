"""Keeping secrets out of the store and the logs."""

from __future__ import annotations

import functools
import os
import re
from typing import Any

# Environment variables: any name containing one of these words holds a secret.
SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
# Config keys are named by people; `max_tokens` is not a secret, `api_key` is. A bare `key`
# is not either: the config surface names a key path with it (`key = "model.rate"`).
SECRET_KEY = re.compile(r"(^|_)(api_?key|token|secret|password)$|_key$", re.IGNORECASE)
MASK = "***"
# Names a metric's environment leaves out unless the recipe passes them through: broader than
# SECRET_ENV, since a metric is code a stranger may have written (AWS_*, an ssh agent's socket).
METRIC_HIDDEN = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|^AWS_|COOKIE|SESSION", re.IGNORECASE)
# A value such as https://user:pass@host/ carries a password whatever its name.
URL_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
# Notification URLs carry credentials anywhere in them (a password, a bot token as the host, a
# webhook's path): a `urls` list is masked down to each URL's scheme.
SECRET_URLS = re.compile(r"^urls?$", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_ENV.search(name))


def metric_env(passthrough=()) -> dict[str, str]:
    """The environment a command or python metric runs with: the user's, minus names and values
    that look like secrets, except those the recipe lists in `env_passthrough` (trust shows them).
    A fresh dict each time, worked out again only when the environment or `passthrough` changed."""
    global _metric_env
    seen = (_environment(), tuple(passthrough or ()))
    if seen != _metric_env[0]:
        keep = set(seen[1])
        _metric_env = (seen, {k: v for k, v in os.environ.items()
                              if k in keep or not (METRIC_HIDDEN.search(k) or URL_PASSWORD.search(v))})
    return dict(_metric_env[1])


_metric_env: tuple = ((), {})  # ((the environment seen, passthrough), what a metric gets)


def _environment() -> tuple:
    """The environment as it is now, cheap to compare: CPython's os.environ keeps its raw table,
    compared without decoding every name."""
    raw = getattr(os.environ, "_data", None)
    return tuple(raw.items()) if isinstance(raw, dict) else tuple(os.environ.items())


_found: tuple = ((), [])  # (the environment seen, its secret values): asked for on every measurement


def secret_values() -> list[str]:
    """Values of environment variables named like keys, tokens or secrets, longest first. Not a
    number (`MAX_TOKENS=100000`): masked, it would be masked in every score, budget and recipe
    that holds those digits, and the stored JSON and TOML would no longer read."""
    global _found
    seen = _environment()  # matching every name against the secret patterns is what costs
    if seen != _found[0]:
        values = (v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6 and not _number(v))
        _found = (seen, sorted(values, key=len, reverse=True))
    return _found[1]


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def scrub(text: str, secrets: list[str] | None = None) -> str:
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


# What a measurement or a proposal carries that is not text for people: the candidate itself
# (masking it would change what is measured), the agent's own state, names and the messages the
# gateway already redacted.
UNSCRUBBED = frozenset({"view", "edits", "meta", "messages", "model", "role", "status", "cache_key", "id", "split"})


def scrubbed(obj: Any, secrets: list[str] | None = None) -> Any:
    """A copy of an Outcome, a Measurement or a Proposal with every string it gives back masked
    (reason, trace, rationale, example outputs and feedback, model replies), made where it is
    made, so no sink (stderr, the agent's prompt, the store, the TUI) sees the secret. `obj`
    itself when it holds none: looking costs less than copying, and most hold none."""
    from dataclasses import is_dataclass, replace

    secrets = secret_values() if secrets is None else secrets
    if not secrets or not _holds(obj, secrets):
        return obj

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value, secrets)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if is_dataclass(value) and not isinstance(value, type):
            return replace(value, **{name: walk(getattr(value, name)) for name in _text_fields(type(value))})
        return value

    return walk(obj)


def _holds(value: Any, secrets: list[str]) -> bool:
    """True when a string `scrubbed` would mask holds one of `secrets`."""
    if isinstance(value, str):
        return any(s in value for s in secrets)
    if isinstance(value, list):
        return any(_holds(v, secrets) for v in value)
    if hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type):
        return any(_holds(getattr(value, name), secrets) for name in _text_fields(type(value)))
    return False


@functools.cache
def _text_fields(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass that `scrubbed` masks: those passed to it when made, but not UNSCRUBBED."""
    from dataclasses import fields

    return tuple(f.name for f in fields(cls) if f.init and f.name not in UNSCRUBBED)


def mask_url(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def _masked_urls(key: Any, value: Any) -> list[str] | None:
    if SECRET_URLS.search(str(key)) and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [mask_url(v) for v in value]
    return None


# A key of a recipe's text that may name a secret or notification URLs (a superset of what
# SECRET_KEY and SECRET_URLS match): a text with none has nothing to mask, and needs no parser.
MAYBE_SECRET_KEY = re.compile(r"(api_?key|token|secret|password|_key|urls?)[\"']?\s*=", re.IGNORECASE)


def redact_toml(text: str) -> str:
    """A recipe's text with the values of secret-looking keys masked; comments and layout kept."""
    if not MAYBE_SECRET_KEY.search(text):
        return scrub(text)
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except TOMLKitError:
        return scrub(text)
    return scrub(tomlkit.dumps(doc) if _mask(doc) else text)


def _mask(node: Any) -> bool:
    changed = False
    if isinstance(node, dict):
        for key in list(node.keys()):
            value = node[key]
            if isinstance(value, str) and value and SECRET_KEY.search(str(key)):
                node[key] = MASK
                changed = True
            elif _masked_urls(key, value) is not None and value:
                node[key] = _masked_urls(key, value)
                changed = True
            else:
                changed = _mask(value) or changed
    elif isinstance(node, list):
        for value in node:
            changed = _mask(value) or changed
    return changed


def redact(obj: Any) -> Any:
    """A copy of a config with secret-looking keys masked and secret values scrubbed."""
    if isinstance(obj, dict):
        return {k: (MASK if SECRET_KEY.search(str(k)) and isinstance(v, str) and v else _masked_urls(k, v) or redact(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return scrub(obj)
    return obj
