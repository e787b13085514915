"""`overnight plugins [KIND]`: what is installed, what each provides, what failed to load, and
every key a plugin's recipe section takes, read from the plugin's own option schema."""

from __future__ import annotations

import json

import click

from overnight.core.errors import OvernightError

_TYPES = {str: "string", int: "integer", float: "number", bool: "true/false", list: "list", dict: "table"}
SECTIONS = {"surface": "[surface]", "metric": "[metric] or [[guards]]", "agent": "[agent]", "executor": "[executor]"}


@click.command()
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(kind, as_json):
    """List every plugin, its version and what it provides; broken ones too.

    With KIND (a kind a recipe names, such as cell or email), list every key
    its section takes: type, default and meaning.
    """
    from overnight.core.plugins import registry

    reg = registry()
    if kind:
        return _one(reg, kind, as_json)
    items = []
    for info in reg.plugins.values():
        provides = {}
        for what, names in info.provides.items():
            provides[what] = [{"name": n, "summary": reg.classes[what][n].summary} for n in names]
        items.append({"name": info.name, "version": info.version, "provides": provides, "error": info.error,
                      "refused": list(info.refused)})
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        head = f"{item['name']} {item['version']}".rstrip()
        if item["error"]:
            click.secho(f"{head}: failed to load: {item['error']}", fg="red")
            continue
        click.echo(head)
        for what, entries in item["provides"].items():
            for entry in entries:
                click.echo(f"  {what:<8} {entry['name']:<12} {entry['summary']}")
        for line in item["refused"]:
            click.secho(f"  {line}", fg="yellow")
    click.echo("\nEvery key a plugin takes: overnight plugins KIND (for example: overnight plugins cell).")


def _one(reg, kind: str, as_json: bool) -> None:
    found = [(what, reg.classes[what][kind]) for what in reg.classes if kind in reg.classes[what]]
    if not found:
        from overnight.core.options import closest

        names = sorted({n for classes in reg.classes.values() for n in classes})
        hint = closest(kind, names)
        tip = f" Did you mean '{hint}'?" if hint else ""
        raise OvernightError(f"No plugin provides the kind '{kind}'.{tip} Available: {', '.join(names)}.")
    described = [_describe(reg, what, cls) for what, cls in found]
    if as_json:
        click.echo(json.dumps(described if len(described) > 1 else described[0], indent=2))
        return
    for n, d in enumerate(described):
        if n:
            click.echo("")
        click.echo(f"{d['kind']} {d['name']}  (from {d['plugin']})")
        click.echo(f"  {d['summary']}")
        click.echo("")
        click.echo(f"Keys of its {SECTIONS[d['kind']]} table:" if d["keys"] else f"Its {SECTIONS[d['kind']]} table takes no keys of its own.")
        _table(d["keys"])
        for name, keys in d.get("entries", {}).items():
            click.echo(f"\nEach entry of '{name}' takes:")
            _table(keys)
        for section, keys in d["shared"].items():
            click.echo(f"\nEvery {section} table also takes:")
            _table(keys)


def _describe(reg, what: str, cls) -> dict:
    from overnight.core import recipe

    info = reg.plugins.get(reg.owner.get((what, cls.name), ""))
    shared = {"[metric]": recipe.METRIC_KEYS, "[[guards]]": recipe.GUARD_KEYS} if what == "metric" else {f"[{what}]": recipe.KIND}
    out = {
        "kind": what, "name": cls.name, "summary": cls.summary,
        "plugin": f"{info.name} {info.version}".strip() if info else "?",
        "runs_code": cls.runs_code, "uses_llm": cls.uses_llm,
        "keys": [_key(k, o) for k, o in cls.options.items()],
        "shared": {section: [_key(k, o) for k, o in keys.items()] for section, keys in shared.items()},
    }
    entries = getattr(cls, "entry_options", None)
    if entries:
        out["entries"] = {name: [_key(k, o) for k, o in keys.items()] for name, keys in entries.items()}
    return out


def _key(name: str, option) -> dict:
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    meaning = option.help or ""
    limits = []
    if option.choices is not None:
        limits.append("one of " + ", ".join(str(c) for c in option.choices))
    if option.min is not None or option.max is not None:
        limits.append(_range(option.min, option.max))
    if limits:
        meaning = f"{meaning} ({'; '.join(limits)})" if meaning else "; ".join(limits)
    return {"name": name, "type": " or ".join(_TYPES.get(t, t.__name__) for t in types), "required": option.required,
            "default": option.default, "choices": list(option.choices) if option.choices is not None else None,
            "min": option.min, "max": option.max, "meaning": meaning}


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    return f"at least {lo:g}" if lo is not None else f"at most {hi:g}"


def _default(key: dict) -> str:
    if key["required"]:
        return "required"
    value = key["default"]
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (str, list, dict)) else str(value)


def _table(keys: list[dict]) -> None:
    if not keys:
        return
    rows = [(k["name"], k["type"], _default(k), k["meaning"]) for k in keys]
    widths = [max(len(r[i]) for r in rows + [("KEY", "TYPE", "DEFAULT", "")]) for i in range(3)]
    click.echo("  " + "  ".join(h.ljust(w) for h, w in zip(("KEY", "TYPE", "DEFAULT"), widths)) + "  MEANING")
    for row in rows:
        click.echo("  " + "  ".join(v.ljust(w) for v, w in zip(row[:3], widths)) + "  " + row[3])
