"""The layers of overnight hold: pyproject.toml's import-linter contracts, run one by one.

Each contract runs through `lint-imports` in a fresh interpreter, and a broken one fails
with lint-imports' own report (which module imports which, at which line).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomlkit

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
MODULES = ("source_modules", "forbidden_modules", "modules")


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]


def _contracts() -> list[dict]:
    return _config()["contracts"]


@pytest.mark.parametrize("contract", _contracts(), ids=lambda c: c["id"])
def test_a_layer_holds(contract, tmp_path):
    done = subprocess.run([sys.executable, "-c", LINT, "--config", str(ROOT / "pyproject.toml"), "--contract", contract["id"],
                           "--no-cache"], capture_output=True, text=True, cwd=tmp_path, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_every_package_the_layers_name_exists():
    config = _config()
    assert all(importlib.util.find_spec(p) for p in config["root_packages"])
    named = {m for c in config["contracts"] for k in MODULES for m in c.get(k, ())}
    assert named <= set(config["root_packages"])


def test_a_broken_layer_fails_with_what_imports_what(tmp_path):
    """The check is real: core importing a front end is reported, naming the import."""
    package = tmp_path / "layered"
    (package / "core").mkdir(parents=True)
    (package / "cli").mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli" / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("from layered.cli import main\n")
    (tmp_path / "layers.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["layered"]\n\n[[tool.importlinter.contracts]]\nid = "core"\n'
        'name = "core imports no front end"\ntype = "forbidden"\nsource_modules = ["layered.core"]\n'
        'forbidden_modules = ["layered.cli"]\n', encoding="utf-8")

    done = subprocess.run([sys.executable, "-c", LINT, "--config", "layers.toml", "--no-cache"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)

    assert done.returncode == 1
    assert "layered.core is not allowed to import layered.cli" in done.stdout
