"""A recipe's reach: what it may do beyond its own folder, read from recipe.toml without running any of it.

The trust prompt, `recipes show`, `recipes list` and `recipes install` all print
this one answer: the code it runs, the files outside its folder it writes, the
hosts it sends data to with the environment key each request carries, and the
secret-looking environment variables it passes to its code.

Plugins say which of their option keys matter through `option_roles`
(`{"run": "command", "model": "model", "api_base": "api_base", ...}`, see
`overnight.core.paths.roles`); undeclared keys follow the built-in names, so a
third-party `api_base` or `judge_model` is found too. A plugin that calls
models but names none is listed as such: its reach is unknown, never empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from overnight.core.paths import named, roles
from overnight.core.providers import key_for

from .printable import printable

# provider -> its own host (the key a request carries: core/providers.KEYS)
HOSTS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "ollama": "http://localhost:11434",
    "ollama_chat": "http://localhost:11434",
    "gemini": "https://generativelanguage.googleapis.com",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "together_ai": "https://api.together.xyz/v1",
    "xai": "https://api.x.ai/v1",
    "cohere": "https://api.cohere.ai",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "perplexity": "https://api.perplexity.ai",
    "huggingface": "https://api-inference.huggingface.co",
    "azure": "the host in AZURE_API_BASE",
    "bedrock": "AWS Bedrock",
    "vertex_ai": "Google Vertex AI",
    "hosted_vllm": "the api_base it names",
    "lm_studio": "the api_base it names",
}
OPENAI_BARE = re.compile(r"^(gpt-|o\d|chatgpt-|ft:gpt|text-|davinci|babbage)")


@dataclass(frozen=True)
class Sends:
    """One model a part calls: where its requests go and the environment key they carry."""

    section: str  # "[agent] llm"
    model: str
    host: str
    key: str | None
    chosen: bool  # the recipe names the host (api_base) rather than the provider's own

    def line(self) -> str:
        what = f"{self.key} and your prompt" if self.key else "your prompt"
        own = "" if self.chosen else ", the provider's own host"
        to = self.host
        notes = []
        if "@" in _netloc(self.host):  # `https://api.openai.com@elsewhere/v1` reaches elsewhere
            notes.append("names a user before its '@'; the host is what follows")
        host = _hostname(self.host)
        if host and not host.isascii():  # `api.open\u0430i.com`, a Cyrillic a, looks like OpenAI's and is not
            looked_up = "this is the name actually looked up" if _ascii_host(host) else "no such name can be looked up"
            notes.append(f"writes its host in non-ASCII letters; {looked_up}")
        if notes:
            to = f"{host_of(self.host)} (the address {self.host} {'; it '.join(notes)})"
        return printable(f"{self.section}: sends {what} to {to} (model {self.model}{own})")


def host_of(url: str) -> str:
    """The host (and port) a URL reaches, as a person must read it: a user name before an '@' is no
    host, and a non-ASCII host is shown as the ASCII name looked up, since letters can look alike."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is no number: shown as written
        return _netloc(url)
    if not host:
        return _netloc(url)
    if not host.isascii():
        host = _ascii_host(host) or host.encode("ascii", "backslashreplace").decode("ascii")
    host = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
    return f"{host}:{port}" if port else host


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _ascii_host(host: str) -> str | None:
    """The name a resolver is asked for (`api.xn--openi-7ve.com`), encoded the way httpx, under
    litellm, encodes it (IDNA 2008); None for a host that no such name can stand for."""
    try:
        import idna
    except ImportError:  # httpx brings it; without it, Python's own (IDNA 2003) codec
        idna = None
    try:
        return idna.encode(host).decode("ascii") if idna else host.encode("idna").decode("ascii")
    except UnicodeError:  # idna's own errors are UnicodeErrors too
        return None


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:
        return url


@dataclass
class Reach:
    """What a recipe reaches beyond its folder: what its trust is asked for."""

    runs_code: bool = False
    commands: list[str] = field(default_factory=list)  # one labelled line per command or piece of code
    command_strings: list[str] = field(default_factory=list)  # the raw `run` strings, for the digest
    code_files: list[str] = field(default_factory=list)  # files of code named by the recipe (python metric)
    writes_outside: list[tuple[str, Path]] = field(default_factory=list)  # (part, file)
    sends: list[Sends] = field(default_factory=list)
    unknown_llm: list[str] = field(default_factory=list)  # parts that call models and name none
    env_passthrough: list[tuple[str, str]] = field(default_factory=list)  # (part, variable)
    ships_to: list[tuple[str, str]] = field(default_factory=list)  # (part, cluster): where measurements run
    notifies: list[str] = field(default_factory=list)  # [notify] urls: a cloned recipe's author could read its news

    @property
    def hosts(self) -> list[tuple[str, str, str | None]]:
        return [(s.model, s.host, s.key) for s in self.sends]

    @property
    def needs_trust(self) -> bool:
        return bool(self.runs_code or self.writes_outside or self.sends or self.unknown_llm or self.env_passthrough
                    or self.ships_to or self.notifies)

    def lines(self) -> list[str]:
        """What the trust prompt lists, one capability a line, escaped for the terminal."""
        out = [printable(line) for line in self.commands]
        out += [printable(f"{part}: writes your file {path}, outside the recipe folder") for part, path in self.writes_outside]
        out += [s.line() for s in self.sends]
        out += [printable(f"{part}: calls language models it does not name (a plugin's own choice)") for part in self.unknown_llm]
        out += [printable(f"{part}: gives its code {name} from your environment (env_passthrough)") for part, name in self.env_passthrough]
        out += [printable(f"{part}: sends the recipe folder and each candidate to {cluster}, where they are measured")
                for part, cluster in self.ships_to]
        if self.notifies:
            from overnight.plugins.notify import masked  # apprise, read only when there are urls

            out += [printable(f"[notify]: sends the run's news (its name, scores and times) to {masked(url)}")
                    for url in self.notifies]
        return out

    def sends_to(self) -> list[str]:
        """Short host names with keys, for a column: "api.openai.com (OPENAI_API_KEY)"."""
        out = []
        for s in self.sends:
            host = host_of(s.host)
            item = printable(f"{host} ({s.key})" if s.key else host)
            if item not in out:
                out.append(item)
        return out + (["a host its plugin picks"] if self.unknown_llm else []) + [c for _, c in self.ships_to]


def reach(recipe) -> Reach:
    """Everything `recipe` may do beyond its folder, from its text and plugin classes alone."""
    found = Reach()
    for part in recipe.parts:
        label = f"[{part.section.replace('#', ' #')}] {part.cls.name}"
        part_roles = roles(part.cls)
        if part.cls.runs_code:
            found.runs_code = True
            plugin = part.build(recipe.dir)
            described = plugin.describe_code() or [f"code of the recipe, as the {part.cls.name} plugin runs it (it does not say more)"]
            found.commands += [f"{label}: {line}" for line in described]
            for key, role in part_roles.items():
                value = part.options.get(key)
                if role == "command" and isinstance(value, str):
                    found.command_strings.append(value)
                elif role == "code" and isinstance(value, str):
                    found.code_files.append(value)
        for key, role in part_roles.items():
            if role == "env":
                found.env_passthrough += [(label, str(name)) for name in part.options.get(key) or []]
        if part.cls.uses_llm:
            sends = _sends(label, part.options, part_roles)
            found.sends += [s for s in sends if s not in found.sends]
            if not sends:
                found.unknown_llm.append(label)
    executor = getattr(recipe, "executor", None)
    cluster = executor.cls.ships_to(executor.options) if executor and hasattr(executor.cls, "ships_to") else None
    if cluster:
        found.ships_to.append((f"[executor] {executor.cls.name}", cluster))
    found.notifies = [u for u in (getattr(recipe, "notify", None) or {}).get("urls") or [] if isinstance(u, str)]
    outside = _surface_outside(recipe)
    if outside is not None:
        found.writes_outside.append((f"[surface] {recipe.surface.cls.name}", outside))
    return found


def _sends(label: str, options: dict, part_roles: dict) -> list[Sends]:
    """Each model key with the api_base that goes with it (`judge_model` with `judge_api_base`,
    else `api_base`); a model left empty falls back to the part's first model, as plugins do."""
    models = [k for k, r in part_roles.items() if r == "model"]
    bases = {k for k, r in part_roles.items() if r == "api_base"}
    first = next((options[k] for k in models if isinstance(options.get(k), str) and options[k]), None)
    out = []
    for key in models:
        model = options.get(key) if isinstance(options.get(key), str) and options.get(key) else first
        if not model:
            continue
        own = key[: -len("model")] + "api_base"
        base = options.get(own) if own in bases else None
        if not base and "api_base" in bases:
            base = options.get("api_base")
        item = where(model, base if isinstance(base, str) and base else None, label)
        if item not in out:
            out.append(item)
    return out


def where(model: str, api_base: str | None, label: str = "") -> Sends:
    """Where a request for `model` goes, and which key litellm attaches to it."""
    name = provider(model)
    host = HOSTS.get(name)
    key = key_for(name) if name else "the provider's API key"
    if api_base:
        return Sends(label, model, api_base, key, True)
    return Sends(label, model, host or f"{name or 'its provider'}'s own host", key, False)


def provider(model: str) -> str | None:
    if "/" in model:
        return model.split("/", 1)[0].lower()
    if OPENAI_BARE.match(model.lower()):
        return "openai"
    if model.lower().startswith("claude"):
        return "anthropic"
    return None


def _surface_outside(recipe) -> Path | None:
    """The surface's own file when it lies outside the recipe folder (a recipe written in place)."""
    path = recipe.surface.options.get("path")
    try:
        source = recipe.surface.build(recipe.dir).source().resolve()
    except Exception:  # a surface that cannot be built yet fails later with its own message
        source = named(recipe.dir, path) if isinstance(path, str) else None
    if source is None or source.is_relative_to(recipe.dir.resolve()):
        return None
    return source
