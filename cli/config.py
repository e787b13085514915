"""`overnight config`: your own settings file (where notifications go, and on which events)."""

from __future__ import annotations

import click

from overnight.core.errors import OvernightError


@click.group(invoke_without_command=True)
@click.pass_context
def config(ctx):
    """Show your settings (credentials masked); `set`, `edit` and `test` change and try them.

    A recipe's [notify] section overrides them for that recipe.
    """
    if ctx.invoked_subcommand is None:
        _show()


def _show() -> None:
    import tomlkit

    from overnight.core import settings
    from overnight.plugins.notify import masked

    doc = settings.document()
    notify = doc.get("notify")
    if notify is not None and isinstance(notify.get("urls"), list):
        notify["urls"] = [masked(u) if isinstance(u, str) else u for u in notify["urls"]]
    where = settings.path()
    click.echo(f"# {where}" + ("" if where.exists() else " (not written yet: these are the defaults)"))
    click.echo(tomlkit.dumps(doc).rstrip())


@config.command()
def path():
    """Print where the settings file is."""
    from overnight.core import settings

    click.echo(settings.path())


@config.command()
def edit():
    """Open the settings file in your editor ($EDITOR), then check it."""
    from overnight.core import settings

    file = settings.path()
    if not file.exists():
        settings.save(settings.document())
    click.edit(filename=str(file))
    settings.notify()
    click.echo(f"{file} is fine.")


@config.command("set")
@click.argument("key")
@click.argument("values", nargs=-1, required=True)
def set_(key, values):
    """Set KEY (e.g. notify.on) to VALUES; list keys take several, and "" empties them.

    \b
    overnight config set notify.urls "ntfys://my-topic"
    overnight config set notify.on finished failing night_finished
    overnight config set notify.failing_after 5
    overnight config set notify.urls ""
    """
    from overnight.core import settings
    from overnight.core.options import check

    section, _, name = key.partition(".")
    schema = settings.NOTIFY_SCHEMA if section == "notify" else None
    if schema is None or name not in schema:
        known = ", ".join(f"notify.{k}" for k in settings.NOTIFY_SCHEMA)
        raise OvernightError(f"There is no setting {key!r}: the settings are {known}.")
    if schema[name].type is list:
        value = [] if values == ("",) else list(values)  # one empty value: the list is cleared, as a shell can say it
    else:
        value = _scalar(values, schema[name].type, key)
    checked = check({name: value}, {name: schema[name]})
    problems = checked.problems + settings.notify_problems({name: value})
    if problems:
        raise OvernightError(f"{key}: {problems[0][1]}.")
    doc = settings.document()
    if "notify" not in doc:
        import tomlkit

        doc["notify"] = tomlkit.table()
    doc["notify"][name] = value
    file = settings.save(doc)
    click.echo(f"Set {key} in {file}.")


def _scalar(values, kind, key):
    if len(values) != 1:
        raise OvernightError(f"{key} takes one value, not {len(values)}.")
    try:
        return kind(values[0])
    except ValueError:
        raise OvernightError(f"{key} must be a whole number, not {values[0]!r}.") from None


@config.command()
def test():
    """Send a test notification to every URL of your settings; say which arrived."""
    from overnight.core import settings
    from overnight.plugins.notify import Notice, deliver, masked

    urls = settings.notify()["urls"]
    if not urls:
        raise OvernightError("No notification URLs are set: add one with `overnight config set notify.urls URL` (see `overnight config`).")
    notice = Notice("test", "overnight: a test notification", "If you read this, overnight can reach you here.")
    failed = 0
    for url in urls:
        ok = deliver(url, notice)
        failed += not ok
        click.echo(f"{'sent' if ok else 'FAILED'}  {masked(url)}")
    if failed:
        raise OvernightError(f"{failed} of {len(urls)} notification URLs could not be reached (the reason is above).")
