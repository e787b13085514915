"""The operations' one door to the trust record, the same one `overnight run` asks at.

Re-measuring runs the recipe's metric again, and previewing an apply rebuilds its
surface: a recipe that changed after it was trusted must not run that way
either. The TUI draws on the terminal, so it cannot ask there: it refuses with
the command that asks.
"""

from __future__ import annotations

from overnight.sharing import trust
from overnight.core.errors import OvernightError


def ensure_trusted(recipe, store=None, yes: bool = False) -> None:
    """As `overnight run` checks: asks on a terminal, refuses elsewhere unless `yes`."""
    trust.ensure_trusted(recipe, store, yes)


def refuse_untrusted(recipe) -> None:
    """For a front end that cannot ask: the recipe runs nothing, or it is trusted as it is now, or this raises."""
    if trust.what_runs(recipe) and not trust.is_trusted(recipe):
        raise OvernightError(
            f"Recipe '{recipe.name}' runs code and is not trusted as it is now (new, or changed since you trusted it), "
            f"so nothing was run: review and trust it with `overnight recipes trust {recipe.dir}`."
        )
