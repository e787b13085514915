"""The `overnight` command group. Imports stay light: `overnight --help` must be instant."""

from __future__ import annotations

import sys

import click

from overnight.core.errors import OvernightError


class Group(click.Group):
    """Commands are imported only when one is called, so --help pays for none of them."""

    LAZY = {
        "run": ("overnight.cli.run", "run"),
        "status": ("overnight.cli.inspect", "status"),
        "log": ("overnight.cli.inspect", "log"),
        "show": ("overnight.cli.inspect", "show"),
        "diff": ("overnight.cli.inspect", "diff"),
        "export": ("overnight.cli.inspect", "export"),
        "apply": ("overnight.cli.apply", "apply"),
        "plugins": ("overnight.cli.plugins", "plugins"),
        "demo": ("overnight.cli.demo", "demo"),
        "tui": ("overnight.cli.tui", "tui"),
        "recipes": ("overnight.cli.recipes", "recipes"),
        "check": ("overnight.cli.check", "check"),
        "explain": ("overnight.cli.explain", "explain"),
        "pause": ("overnight.cli.control", "pause"),
        "resume": ("overnight.cli.control", "resume"),
        "stop": ("overnight.cli.control", "stop"),
        "steer": ("overnight.cli.control", "steer"),
        "reject": ("overnight.cli.control", "reject"),
        "star": ("overnight.cli.control", "star"),
        "night": ("overnight.cli.night", "night"),
        "report": ("overnight.cli.report", "report"),
        "config": ("overnight.cli.config", "config"),
    }
    HELP = {
        "run": "Run a recipe: propose, measure, keep what is really better.",
        "status": "Show the runs in this workspace.",
        "log": "List the experiments of a run.",
        "show": "Show one experiment: status, reason, score, rationale, diff.",
        "diff": "Show the change an experiment made (against the baseline or another experiment).",
        "export": "Write a run's ledger as TSV or JSONL.",
        "apply": "Write an experiment's change to your file (atomic, with a backup).",
        "plugins": "List the plugins and what each provides.",
        "demo": "Run the bundled pricing recipe offline in a fresh folder.",
        "tui": "Open the terminal UI: watch runs, review, apply.",
        "recipes": "List, show, use, install and validate recipes.",
        "check": "Audit a recipe's metric before spending anything.",
        "explain": "Show what each kept change contributed.",
        "pause": "Pause a running run.",
        "resume": "Resume a paused run.",
        "stop": "Stop a running run cleanly.",
        "steer": "Give the agent a line of guidance from its next proposal on.",
        "reject": "Reject an experiment with a note the agent reads in later runs.",
        "star": "Star an experiment.",
        "night": "Run several recipes one after another, with one digest at the end.",
        "report": "Write a run's or a night's report: one HTML file to open in a browser.",
        "config": "Show and edit your settings: where notifications go, and when.",
    }

    def make_context(self, *args, **kwargs):
        # Ctrl-C reaches click's own handler (`Aborted!`, exit 1) unless caught here and in `invoke`.
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            interrupted()

    def invoke(self, ctx):
        # User mistakes end in one sentence and a non-zero exit, never a traceback.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # while a command is loaded or starts (a run says itself how it stopped)
            interrupted()
        except click.exceptions.Abort as exc:  # a question answered with Ctrl-C
            if isinstance(exc.__context__, KeyboardInterrupt):
                interrupted()
            raise
        except OvernightError as exc:
            from overnight.sharing.printable import printable  # a recipe's text may hold terminal escapes

            click.echo(f"Error: {printable(exc.message, newlines=True)}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            said = _said(exc)
            if said is None:
                raise
            click.echo(f"Error: {said}", err=True)
            ctx.exit(1)

    def list_commands(self, ctx):
        return sorted(set(self.LAZY) | set(super().list_commands(ctx)))

    def get_command(self, ctx, name):
        try:
            if name in self.LAZY:
                import importlib

                if owns_process:  # before the command's modules, whose dataclasses compile their methods
                    from overnight.cli import compiled

                    compiled.install()
                module, attr = self.LAZY[name]
                return getattr(importlib.import_module(module), attr)
            _load_plugin_commands(self)
            return super().get_command(ctx, name)
        finally:
            if owns_process:  # the command's modules are in: the collector, paused by cli/console.py, runs again
                import gc

                gc.enable()

    def format_commands(self, ctx, formatter):
        _load_plugin_commands(self)
        rows = [(name, self.HELP.get(name) or self._short(ctx, name)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short(self, ctx, name):
        cmd = super().get_command(ctx, name)
        return cmd.get_short_help_str(60) if cmd else ""


_plugins_loaded = False


def _load_plugin_commands(group: click.Group) -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    # The built-in plugins add no commands (theirs are in Group.LAZY), so importing them all,
    # which takes longer than the rest of `overnight --help`, is left to the commands that need them;
    # with no other plugin installed, there is nothing to import at all.
    import os

    from overnight.core import entrypoints

    others = [ep for ep in entrypoints.find(("overnight",)) if ep.dist_name != "overnight"]
    if not others and not os.environ.get("OVERNIGHT_PLUGINS", "").strip():
        return
    from overnight.core.plugins import registry

    for warning in registry(builtins=False).call_each("overnight_register_commands", cli=group):
        click.echo(f"Warning: {warning}", err=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="overnight", prog_name="overnight")
def cli():
    """overnight: improve one thing you own while you sleep.

    One surface (the only thing that may change), one metric (a number with a
    direction), one budget. An agent proposes changes; each is measured in a
    work folder of its own and kept only if it is really better. Nothing of
    yours is written until you `overnight apply` it.
    """


# True when overnight is the program (the console script), not a library a test or a host calls:
# only then may a command tune what lasts as long as the process, such as the garbage collector.
owns_process = False


def _said(exc: Exception) -> str | None:
    """A sentence for what the machine, not overnight, refused: a full disk, a store that SQLite
    cannot read or write (read-only, damaged), a value edited into the store by hand; None for
    anything else, which is a bug."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}; what was written so far may be cut short."
    sqlite = type(exc).__module__ == "sqlite3"  # not imported here: `overnight --help` does without it
    if getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
        return _unwritable() or f"The store could not be written: {exc}."
    if sqlite or isinstance(exc, (TypeError, ValueError, AttributeError, KeyError, OverflowError)):
        from overnight.core import damage  # a value edited into the store by hand, or else a bug

        found = damage.found()
        if found or not sqlite:
            return found
        return f"The store could not be read or written: {exc}."
    return None


def _unwritable() -> str | None:
    """Which store this process could not write, and the folder or file that keeps it from being
    written (core/store.py `unwritable`); None when no file says why."""
    from overnight.core.store import opened, unwritable

    for store in list(opened):
        why = store.unwritable or unwritable(store.path)
        if why:
            return f"Cannot write the store {store.path}: {why}."
    return None


def interrupted():
    """Ctrl-C before a command could say how it stopped: exit 130 with one word, as a shell expects,
    rather than click's `Aborted!` and 1 or a traceback."""
    click.echo("Interrupted.", err=True)
    sys.exit(130)


def main() -> None:
    global owns_process
    owns_process = True
    for arg in sys.argv[1:]:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes the terminal could not decode: found now, not as a traceback later
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            click.echo(f"Error: the argument '{shown}' is not UTF-8 text.", err=True)
            sys.exit(2)
    try:
        cli.main()
    except KeyboardInterrupt:
        interrupted()
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
