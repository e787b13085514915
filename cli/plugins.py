"""`overnight plugins`: what is installed, what each provides, and what failed to load."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json):
    """List every plugin, its version and what it provides; broken ones too."""
    from overnight.core.plugins import registry

    reg = registry()
    items = []
    for info in reg.plugins.values():
        provides = {}
        for kind, names in info.provides.items():
            provides[kind] = [{"name": n, "summary": reg.classes[kind][n].summary} for n in names]
        items.append({"name": info.name, "version": info.version, "provides": provides, "error": info.error})
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        head = f"{item['name']} {item['version']}".rstrip()
        if item["error"]:
            click.secho(f"{head}: failed to load: {item['error']}", fg="red")
            continue
        click.echo(head)
        for kind, entries in item["provides"].items():
            for entry in entries:
                click.echo(f"  {kind:<8} {entry['name']:<12} {entry['summary']}")
