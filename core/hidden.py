"""The characters a terminal does not show as themselves: Unicode's control, format (the
direction marks among them), line and paragraph separators, private-use, surrogate and unassigned
code points. A recipe's name may hold none (core/recipe.py); any other text is shown with them
escaped (sharing/printable.py)."""

from __future__ import annotations

HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"))  # unicodedata.category of each


def hidden(text: str) -> list[str]:
    """The hidden characters of `text`, each once, in order, as escapes (`\\x1b`, `\\u202e`)."""
    import unicodedata

    found = (ch for ch in text if ch != " " and unicodedata.category(ch) in HIDDEN)
    return list(dict.fromkeys(ch.encode("unicode_escape").decode("ascii") for ch in found))
