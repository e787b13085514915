"""The person's own settings: one TOML file in their config folder, kept with tomlkit so their
comments survive `overnight config set`. For now it says where notifications go and when; a
recipe's [notify] section overrides it key by key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import OvernightError
from .options import Option, check

FILE = "config.toml"
NOTIFY_EVENTS = ("new_best", "finished", "stopped", "failed", "failing", "spend_80", "night_finished")
# Unset keys stay None, so a recipe's [notify] overrides only what it names.
NOTIFY_SCHEMA = {
    "urls": Option(list, "where to send: apprise URLs such as ntfys://topic", default=None),
    "on": Option(list, f"which events notify: {', '.join(NOTIFY_EVENTS)}", default=None),
    "failing_after": Option(int, "'failing' fires once when this many experiments in a row fail", default=None, min=1),
}
NOTIFY_DEFAULTS = {"urls": [], "on": ["finished", "stopped", "failed", "failing", "night_finished"], "failing_after": 3}

TEMPLATE = f'''\
# overnight's settings for you. `overnight config` shows this file, `overnight config edit` opens it.

[notify]
# Where to send notifications: apprise URLs, one per service (ntfys://TOPIC,
# tgram://BOT_TOKEN/CHAT_ID, mailto://USER:APP_PASSWORD@gmail.com, ...; see
# https://github.com/caronc/apprise/wiki). They hold credentials: overnight never
# stores or logs them, and shows them masked.
urls = []
# Which events notify: {", ".join(NOTIFY_EVENTS)}.
on = {json.dumps(NOTIFY_DEFAULTS["on"])}
# 'failing' fires once when this many experiments in a row crash, time out or are invalid.
failing_after = 3
'''


def path() -> Path:
    """OVERNIGHT_HOME (tests, portable setups) holds it too; otherwise the platform's config folder."""
    override = os.environ.get("OVERNIGHT_HOME")
    if override:
        return Path(override).expanduser() / FILE
    from platformdirs import user_config_dir

    return Path(user_config_dir("overnight")) / FILE


def document():
    """The file as a tomlkit document (the commented template when there is none yet)."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    file = path()
    try:
        text = file.read_text(encoding="utf-8") if file.exists() else TEMPLATE
    except (OSError, UnicodeDecodeError) as exc:
        raise OvernightError(f"Cannot read your settings {file}: {exc}.") from None
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise OvernightError(f"{file}:{exc.line}:{exc.col}: your settings are not valid TOML; fix them with `overnight config edit`.") from None


def read() -> dict[str, Any]:
    """The file's values, read with the standard parser: a run reads them and writes nothing,
    so it need not load tomlkit. A broken file is read again by `document` to say where."""
    import tomllib

    file = path()
    try:
        return tomllib.loads(file.read_text(encoding="utf-8")) if file.exists() else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return document().unwrap()


def save(doc) -> Path:
    import tomlkit

    file = path()
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    os.chmod(tmp, 0o600)  # it holds credentials
    tmp.replace(file)
    return file


def notify_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """What the schema cannot say: every URL a string, every event a known one."""
    problems = []
    urls, on = values.get("urls"), values.get("on")
    if urls is not None and not all(isinstance(u, str) and "://" in u for u in urls):
        problems.append(("urls", "'urls' must be a list of apprise URLs such as \"ntfys://my-topic\""))
    for event in on or []:
        if event not in NOTIFY_EVENTS:
            from .options import closest

            hint = closest(str(event), NOTIFY_EVENTS)
            tip = f" (did you mean '{hint}'?)" if hint else ""
            problems.append(("on", f"unknown event {event!r}{tip}; events are {', '.join(NOTIFY_EVENTS)}"))
    return problems


def notify(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where and when to notify: the person's settings, then a recipe's [notify] over them."""
    doc = read()
    checked = check(doc.get("notify") or {}, NOTIFY_SCHEMA)
    problems = checked.problems + notify_problems(checked.values)
    if problems:
        key, sentence = problems[0]
        raise OvernightError(f"{_where(key)}: [notify] {key or ''}: {sentence}; fix it with `overnight config edit`.")
    merged = dict(NOTIFY_DEFAULTS)
    for values in (checked.values, overrides or {}):
        merged.update({k: v for k, v in values.items() if v is not None})
    return merged


def _where(key: str | None) -> str:
    from .recipe import Where

    file = path()
    try:
        line = Where(file, file.read_text(encoding="utf-8")).line("notify", key)
    except OSError:
        line = None
    return f"{file}:{line}" if line else str(file)
