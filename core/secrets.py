"""Keeping secrets out of the store and the logs."""

from __future__ import annotations

import os
import re
from typing import Any

# Environment variables: any name containing one of these words holds a secret.
SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
# Config keys are named by people; `max_tokens` is not a secret, `api_key` is.
SECRET_KEY = re.compile(r"(^|_)(api_?key|key|token|secret|password)$", re.IGNORECASE)
MASK = "***"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_ENV.search(name))


def secret_values() -> list[str]:
    """Values of environment variables named like keys, tokens or secrets."""
    return sorted(
        (v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6),
        key=len,
        reverse=True,
    )


def scrub(text: str) -> str:
    for value in secret_values():
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(obj: Any) -> Any:
    """A copy of a config with secret-looking keys masked and secret values scrubbed."""
    if isinstance(obj, dict):
        return {k: (MASK if SECRET_KEY.search(str(k)) and isinstance(v, str) and v else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return scrub(obj)
    return obj
