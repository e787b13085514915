"""The one door from a recipe to a built setup, through the trust record `overnight run` asks at.

Every front end that builds a setup (run, dry-run, check, explain, demo, the TUI's
re-measure, anything added later) calls `build` here, never core.setup.build: so
a recipe that reaches beyond its folder and is not trusted as it is now (new, or
changed since) runs nothing, and the model hosts its trust covered are the only
ones a key from the environment is sent to. The TUI draws on the terminal, so it
cannot ask there: it passes `ask=False` and refuses with the command that asks.
"""

from __future__ import annotations

from pathlib import Path

from overnight.core.errors import OvernightError
from overnight.sharing import trust


def build(recipe, store, events=None, *, yes: bool = False, ask: bool = True, with_agent: bool = True):
    """core.setup.build once the person trusts the recipe: asks on a terminal (`ask`), refuses elsewhere unless `yes`."""
    from overnight.core.setup import build as build_setup

    if ask:
        trust.ensure_trusted(recipe, store, yes)
    else:
        refuse_untrusted(recipe)
    return build_setup(recipe, store, events, with_agent=with_agent, hosts=_hosts(recipe))


def _hosts(recipe) -> frozenset:
    """The api_bases trust covers: those of the recipe as it is on disk (what the person trusted), when a
    run's recorded text (re-measure) names others."""
    from overnight.core.recipe import load

    hosts = trust.hosts(recipe)
    try:
        same = recipe.text == Path(recipe.path).read_text(encoding="utf-8")
        return hosts if same else hosts & trust.hosts(load(recipe.path))
    except (OSError, UnicodeDecodeError, OvernightError):
        return frozenset()


def ensure_trusted(recipe, store=None, yes: bool = False) -> None:
    """As `overnight run` checks: asks on a terminal, refuses elsewhere unless `yes`."""
    trust.ensure_trusted(recipe, store, yes)


def refuse_untrusted(recipe) -> None:
    """For a front end that cannot ask: the recipe needs no trust, or it is trusted as it is now, or this raises."""
    found = trust.reach(recipe)
    if found.needs_trust and not trust.is_trusted(recipe, found) and not trust.accepted(recipe):
        raise OvernightError(
            f"Recipe '{recipe.name}' {'runs code' if found.runs_code else trust.needs(found)} and is not trusted as it is now (new, or changed since you "
            f"trusted it), so nothing was run: review and trust it with `overnight recipes trust {recipe.dir}`."
        )
