"""The wheel: everything under the one import root `overnight`, the bundled recipes inside."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
# Every folder pyproject.toml maps under `overnight` (core, cli, sharing, ...): a new package is checked too.
FOLDERS = tuple(tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values())
SOURCES = ("pyproject.toml", "README.md", "LICENSE", *FOLDERS)
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".overnight")


def test_the_wheel_installs_only_overnight_with_its_recipes(tmp_path):
    # Built from a copy, so a build never leaves build/ or egg-info behind in the working tree.
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPOSITORY / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=JUNK)
        elif path.exists():
            shutil.copy2(path, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("overnight-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    top = {n.split("/")[0] for n in names}
    assert top == {"overnight", next(t for t in top if t.endswith(".dist-info"))}
    assert {"core", "cli", "plugins", "tui", "ops", "recipes", "sharing"} <= set(FOLDERS)
    assert not any(n.startswith(tuple(f"{folder}/" for folder in FOLDERS)) for n in names)
    for folder in FOLDERS:
        for module in (REPOSITORY / folder).glob("*.py"):
            assert f"overnight/{folder}/{module.name}" in names

    # The bundled recipes travel inside, every file of each.
    assert "overnight/recipes/__init__.py" in names, "recipes/__init__.py is missing: overnight.recipes must be a package"
    recipes = REPOSITORY / "recipes"
    for file in recipes.rglob("*"):
        if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
            assert f"overnight/recipes/{file.relative_to(recipes).as_posix()}" in names
    for toml in recipes.rglob("recipe.toml"):
        assert f"overnight/recipes/{toml.relative_to(recipes).as_posix()}" in names

    # The entry points: the console script and the built-in plugins, like any third party's.
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "overnight = overnight.cli.console:main" in text
    for line in ("text = overnight.plugins.text", "command = overnight.plugins.command",
                 "python = overnight.plugins.python_metric", "scripted = overnight.plugins.scripted"):
        assert line in text

    # Installed into a folder of its own, it puts nothing else at the top.
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    placed = {p.name for p in target.iterdir() if p.name != "bin"}
    assert placed == {"overnight", next(p for p in placed if p.endswith(".dist-info"))}
