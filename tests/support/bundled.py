"""A bundled recipe copied where a test or a bench can change it, with its own experiment budget."""

from __future__ import annotations

import shutil
from pathlib import Path

import tomlkit

from overnight.recipes import folder as bundled


def bundled_copy(root: Path, name: str, experiments: int) -> Path:
    """`root/name`: the bundled recipe `name`, its `[budget] experiments` set to `experiments`."""
    folder = root / name
    shutil.copytree(bundled(name), folder, ignore=shutil.ignore_patterns("__pycache__"))
    doc = tomlkit.parse((folder / "recipe.toml").read_text())
    doc["budget"]["experiments"] = experiments
    (folder / "recipe.toml").write_text(tomlkit.dumps(doc))
    return folder
