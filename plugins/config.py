"""Surface `config`: chosen keys of a TOML or JSON file, as typed parameters.

The view is the whole file, so a person reads a diff of their own file and a
language model can edit it too; the check lets only the declared keys change,
within their bounds or choices. Values are written in place: TOML through
tomlkit (comments and layout survive), JSON by replacing just the value's
characters, so a change is one line of diff.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from overnight.core import parameters
from overnight.core.contracts import Parameter, ParametricSurface
from overnight.core.errors import OvernightError, RecipeError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.textfile import TextFileSurface

# A declaration takes its key path besides the keys every parameter takes (core/parameters.py).
KEY = {"key": Option(str, "the key path, dots between names (model.learning_rate)", required=True)}
FORMATS = {".toml": "toml", ".json": "json"}


class ConfigSurface(TextFileSurface, ParametricSurface):
    name = "config"
    noun = "config file"
    summary = "Numeric and choice keys of a TOML or JSON file, as parameters; every other key stays as it is."
    options = {
        "path": Option(str, "the .toml or .json file, relative to the recipe", required=True),
        "params": Option(list, "the keys that may change: [{ key = \"a.b\", min = 0, max = 1 }, { key = \"c\", choices = [...] }]", required=True),
        "format": Option(str, "toml or json (default: from the file's extension)", default=None, choices=("toml", "json")),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.recipe_file = recipe_dir / "recipe.toml"
        self.format = self.config["format"] or FORMATS.get(Path(self.config["path"]).suffix.lower())
        if self.format is None:
            raise OvernightError(
                f"{self.recipe_file}: [surface] path: the config file {self.config['path']!r} is neither .toml nor .json; "
                f"rename it or set format = \"toml\" or \"json\"."
            )
        self.params = self._params(self.config["params"])
        self.by_key = {p.name: p for p in self.params}

    def _params(self, entries: list) -> list[Parameter]:
        """The declared keys; every declaration that cannot be used is reported at once."""
        if not entries:
            raise RecipeError(f"{parameters.where(self.recipe_dir, 'params', None, None)}: declare at least one key that may change.")
        params, problems, seen = [], [], {}
        for i, entry in enumerate(entries, 1):
            key = entry.get("key") if isinstance(entry, dict) and isinstance(entry.get("key"), str) else None
            # Where a declaration is, looked up only for a problem: it reads recipe.toml again each time.
            where = functools.partial(parameters.where, self.recipe_dir, "params", i, key)
            try:
                values = parameters.read(entry, KEY, '{ key = "model.rate", min = 0, max = 1 }')
                p = parameters.declare(values["key"], values)
            except parameters.Invalid as exc:
                problems.append(f"{where()}: {exc}.")
                continue
            if p.name in seen:
                problems.append(f"{where()}: the key {p.name!r} is declared twice (also params #{seen[p.name]}).")
                continue
            seen[p.name] = i
            params.append(p)
        if problems:
            raise RecipeError(problems)
        return params

    # -- reading ----------------------------------------------------------------

    def read(self) -> str:
        path = self.source()
        text = self.read_text()
        data, problem = self._parse(text)
        if problem:
            raise OvernightError(f"The config file {path} is not valid {self.format.upper()}: {problem}.")
        for p in self.params:
            found, value = _get(data, p.name)
            if not found:
                raise OvernightError(f"The config file {path} has no key {p.name!r} (declared in the recipe's [surface] params).")
            if p.choices is None and not _is_number(value):
                raise OvernightError(f"The key {p.name!r} in {path} holds {value!r}, not a number, but the recipe gives it min and max.")
        return text

    def parameters(self) -> list[Parameter]:
        return list(self.params)

    def rules(self) -> str:
        lines = ["Return the whole file. Change only the values of these keys, and keep every other key, value and comment as it is:"]
        lines += [f"- {p.name}: {parameters.describe(p)}" for p in self.params]
        return "\n".join(lines)

    def problems(self, view: str, base: str) -> list[str]:
        new, problem = self._parse(view)
        if problem:
            return [f"it is not valid {self.format.upper()}: {problem}"]
        out = []
        for p in self.params:
            found, value = _get(new, p.name)
            if not found:
                out.append(f"the key {p.name!r} is missing")
                continue
            bad = parameters.problem(p, value)
            if bad:
                out.append(bad)
        keys = tuple(self.by_key)
        changed = _first_change(_rest(self.format, base, keys), _rest(self.format, view, keys))
        if changed:
            out.append(f"it changes {changed!r}, which is not a declared parameter")
        return out

    # -- writing ------------------------------------------------------------------

    def view_from(self, values: dict[str, Any], base: str) -> str:
        values = {k: parameters.snap(self.by_key[k], v) for k, v in values.items() if k in self.by_key}
        if self.format == "toml":
            import tomlkit

            doc = tomlkit.parse(base)
            for key, value in values.items():
                _set(doc, key, value)
            return tomlkit.dumps(doc)
        spans = _json_spans(base)
        missing = [k for k in values if k not in spans]
        if missing:
            raise OvernightError(f"The config view has no key {missing[0]!r}.")
        # Replace from the end so earlier offsets stay right.
        for start, end, value in sorted(((*spans[k], v) for k, v in values.items()), reverse=True):
            base = base[:start] + json.dumps(value) + base[end:]
        return base

    def values_of(self, view: str) -> dict[str, Any]:
        data, problem = self._parse(view)
        if problem:
            raise OvernightError(f"The config view is not valid {self.format.upper()}: {problem}.")
        return {p.name: _get(data, p.name)[1] for p in self.params}


    def _parse(self, text: str) -> tuple[Any, str | None]:
        """(plain data, None), or (None, why it does not parse)."""
        return _parsed(self.format, text)


@functools.lru_cache(maxsize=64)
def _parsed(fmt: str, text: str) -> tuple[Any, str | None]:
    """`_parse`, remembered for the latest texts: a run reads each candidate several times (its
    problems against its base, its values for the agent). The data is shared: never changed."""
    if fmt == "toml":
        import tomlkit
        from tomlkit.exceptions import ParseError

        try:
            return tomlkit.parse(text).unwrap(), None
        except ParseError as exc:
            return None, str(exc)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"


@functools.lru_cache(maxsize=64)
def _rest(fmt: str, text: str, keys: tuple[str, ...]) -> Any:
    """Everything but the declared keys of a text that parses (the base each proposal is checked
    against, most often the same one), remembered as `_parsed` is."""
    return _without(_parsed(fmt, text)[0], keys)


# -- key paths --------------------------------------------------------------------


def _get(data: Any, key: str) -> tuple[bool, Any]:
    node = data
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _set(doc: Any, key: str, value: Any) -> None:
    parts = key.split(".")
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) and part.isdigit() else node[part]
    last = parts[-1]
    node[int(last) if isinstance(node, list) and last.isdigit() else last] = value


def _without(data: Any, keys: dict) -> Any:
    """A copy of the data with the declared keys blanked, to compare everything else."""
    data = json.loads(json.dumps(data, default=str))
    for key in keys:
        found, _ = _get(data, key)
        if found:
            _set(data, key, None)
    return data


def _first_change(old: Any, new: Any, path: str = "") -> str | None:
    """The first key path whose value differs, or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            if k not in old or k not in new:
                return f"{path}{k}"
            found = _first_change(old[k], new[k], f"{path}{k}.")
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            found = _first_change(a, b, f"{path}{i}.")
            if found:
                return found
        return None
    return None if old == new and type(old) is type(new) else (path.rstrip(".") or "the whole file")


def _json_spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each value of a JSON document sits in its text, by key path."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def value(i: int, path: str) -> int:
        i = skip(i)
        start = i
        if text[i] == "{":
            i = skip(i + 1)
            while text[i] != "}":
                name, i = decoder.raw_decode(text, i)
                i = skip(skip(i) + 1)  # past the colon
                i = skip(value(i, f"{path}{name}."))
                if text[i] == ",":
                    i = skip(i + 1)
            end = i + 1
        elif text[i] == "[":
            i, n = skip(i + 1), 0
            while text[i] != "]":
                i = skip(value(i, f"{path}{n}."))
                n += 1
                if text[i] == ",":
                    i = skip(i + 1)
            end = i + 1
        else:
            _, end = decoder.raw_decode(text, i)
        spans[path.rstrip(".")] = (start, end)
        return end

    value(0, "")
    return spans


# -- values -------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@hookimpl
def overnight_register_surfaces(register):
    register(ConfigSurface)
