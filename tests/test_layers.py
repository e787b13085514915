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
# A contract that holds only once a package exists: the front ends stop importing each other
# when the operations they share live in overnight.ops. Until that package exists the contract
# is skipped, saying why; from then on it is strict like the others.
WAITS_FOR = {"front-ends": "overnight.ops"}
MODULES = ("source_modules", "forbidden_modules", "modules")


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]


def _contracts() -> list[dict]:
    return _config()["contracts"]


def _missing(config: dict) -> set[str]:
    return {p for p in config["root_packages"] if importlib.util.find_spec(p) is None}


def _runnable(contract: dict, missing: set[str]) -> dict | None:
    """The contract less the packages that do not exist yet; None when nothing is left to check."""
    contract = {k: [m for m in v if m not in missing] if k in MODULES else v for k, v in contract.items()}
    if contract["type"] == "independence":
        return contract if len(contract["modules"]) > 1 else None
    return contract if contract["source_modules"] else None


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    """pyproject.toml itself, or, while some packages do not exist yet, its contracts without them."""
    config = _config()
    missing = _missing(config)
    if not missing:
        return ROOT / "pyproject.toml"
    config["root_packages"] = [p for p in config["root_packages"] if p not in missing]
    config["contracts"] = [c for c in (_runnable(c, missing) for c in config["contracts"]) if c]
    path = tmp_path_factory.mktemp("importlinter") / "layers.toml"
    path.write_text(tomlkit.dumps({"tool": {"importlinter": config}}), encoding="utf-8")
    return path


@pytest.mark.parametrize("contract", _contracts(), ids=lambda c: c["id"])
def test_a_layer_holds(contract, config_file, tmp_path):
    missing = _missing(_config())
    if WAITS_FOR.get(contract["id"]) in missing:
        pytest.skip(f"{contract['name']}: waits for {WAITS_FOR[contract['id']]}, which does not exist yet")
    if _runnable(contract, missing) is None:
        pytest.skip(f"{contract['name']}: not yet in this tree: {', '.join(sorted(missing))}")

    done = subprocess.run([sys.executable, "-c", LINT, "--config", str(config_file), "--contract", contract["id"],
                           "--no-cache"], capture_output=True, text=True, cwd=tmp_path, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_every_package_the_layers_name_exists():
    config = _config()
    missing = _missing(config)
    if missing:
        pytest.skip(f"not yet in this tree: {', '.join(sorted(missing))}; the contracts ran without them")
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
