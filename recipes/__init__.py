"""Recipes that come with overnight: one folder each, holding recipe.toml and its files.

They are never written. `overnight demo` and `overnight recipes use` copy one into a
folder of the person's own first, and that copy is theirs from then on.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent


def folders() -> list[Path]:
    """Every bundled recipe folder, by name."""
    return sorted(p for p in ROOT.iterdir() if p.is_dir() and (p / "recipe.toml").is_file())


def folder(name: str) -> Path | None:
    return next((p for p in folders() if p.name == name), None)
