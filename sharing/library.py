"""The recipes a person can name: bundled with overnight, or installed in the user data folder.

Bundled and installed recipes are never written. A person works on a copy of
their own (`overnight recipes use`, or `overnight run NAME`, which copies first).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from overnight.core import paths
from overnight.core.errors import OvernightError

RECIPE_FILE = "recipe.toml"
MANIFEST = paths.MANIFEST
# Never part of a recipe: the store and work files of runs, caches, version control.
IGNORED = {".overnight", ".git", "__pycache__", ".pytest_cache", ".venv", "venv", "node_modules", ".DS_Store"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def home() -> Path:
    """Where installed recipes, indexes and trust live; OVERNIGHT_HOME overrides it (tests, portable setups)."""
    override = os.environ.get("OVERNIGHT_HOME")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("overnight"))


def installed_root() -> Path:
    return home() / "recipes"


def is_installed(folder: Path) -> bool:
    """Whether a folder is one of the installed recipes (their paths never leave their folder)."""
    try:
        return Path(folder).resolve().is_relative_to(installed_root().resolve())
    except OSError:
        return False


paths.add_sealer(is_installed)


def bundled_root() -> Path | None:
    """The folder of overnight.recipes, wherever overnight is installed."""
    import importlib.util

    spec = importlib.util.find_spec("overnight.recipes")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location)
        if path.is_dir():
            return path
    return None


@dataclass
class Entry:
    """A recipe people can call by name."""

    name: str
    path: Path  # the folder holding recipe.toml
    origin: str  # "bundled" or "installed"
    manifest: dict = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.path / RECIPE_FILE


def _entries(root: Path | None, origin: str) -> list[Entry]:
    if root is None or not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not folder.name.startswith((".", "_")) and (folder / RECIPE_FILE).is_file():
            found.append(Entry(folder.name, folder, origin, read_manifest(folder) if origin == "installed" else {}))
    return found


def bundled() -> list[Entry]:
    return _entries(bundled_root(), "bundled")


def installed() -> list[Entry]:
    return _entries(installed_root(), "installed")


def entries() -> list[Entry]:
    return bundled() + installed()


def lookup(name: str) -> Entry | None:
    if not NAME.match(name):
        return None
    for entry in entries():
        if entry.name == name:
            return entry
    return None


def get(name: str) -> Entry:
    entry = lookup(name)
    if entry is None:
        names = ", ".join(e.name for e in entries()) or "none"
        raise OvernightError(f"There is no bundled or installed recipe named '{name}' (known: {names}).")
    return entry


def locate(ref: str) -> tuple[Path, Entry | None]:
    """A path given as is, or the folder of a bundled or installed recipe by name."""
    path = Path(ref)
    if path.is_dir() and (path / RECIPE_FILE).is_file() or path.is_file():
        return path, None
    entry = lookup(ref)
    if entry is not None:
        return entry.path, entry
    if path.is_dir():
        raise OvernightError(f"The folder {ref} holds no recipe.toml (start one with `overnight recipes init {ref}`).")
    raise OvernightError(f"No recipe named or at {ref!r}: give a folder, a recipe.toml, or a name from `overnight recipes list`.")


def read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_manifest(folder: Path, manifest: dict) -> None:
    path = folder / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


# -- the files of a recipe ----------------------------------------------------


def recipe_files(folder: Path) -> list[str]:
    """Every file of a recipe folder as a relative POSIX path, sorted; links are followed only for files."""
    out = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED)
        for name in files:
            if name in IGNORED or name.endswith(".pyc"):
                continue
            path = Path(top) / name
            if path.is_file():
                out.append(path.relative_to(folder).as_posix())
    return sorted(out)


def folder_digest(folder: Path, skip: set[str] = frozenset()) -> str:
    """sha256 over the relative path and content of every file, so a copy has the digest of its original.

    Each field is length-prefixed: no name or content can pass for another arrangement of files."""
    total = hashlib.sha256()
    for rel in recipe_files(folder):
        if rel in skip:
            continue
        for field_ in (rel.encode("utf-8", "surrogateescape"), file_digest(folder / rel).encode("ascii")):
            total.update(len(field_).to_bytes(8, "big") + field_)
    return total.hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def copy_recipe(source: Path, dest: Path) -> Path:
    """Copies a recipe into a folder of the person's own; never over anything that is there."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OvernightError(f"{dest} already exists and is not empty: overnight never copies a recipe over your files; pick another folder.")
    dest.mkdir(parents=True, exist_ok=True)
    for rel in recipe_files(source):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target)  # copy2 follows links: the copy holds plain files
        # Bundled files may be read-only in a system install; the copy is the person's to edit.
        target.chmod(target.stat().st_mode | 0o200)
    from .trust import carry

    carry(source, dest)
    return dest


def recipe_path_for_run(arg: str) -> Path:
    """What `overnight run ARG` runs: a path if there is one, else a bundled or installed recipe,
    copied first into ./NAME (a later run finds that copy as a path and runs it as it is)."""
    path = Path(arg)
    if path.is_file() or (path / RECIPE_FILE).is_file():  # a recipe here: the library is not read
        return path
    entry = lookup(arg)
    if path.exists():
        if entry and path.is_dir() and not (path / RECIPE_FILE).exists():
            raise OvernightError(
                f"./{arg} exists but holds no {RECIPE_FILE}, so the {entry.origin} recipe '{arg}' cannot be copied there: "
                f"move that folder, or copy the recipe elsewhere with `overnight recipes use {arg} OTHER_FOLDER`."
            )
        return path
    if entry is None:
        raise OvernightError(
            f"No recipe at {arg}: it is not a folder or a recipe.toml here, nor a bundled or installed recipe "
            f"(see `overnight recipes list`)."
        )
    import click

    copy_recipe(entry.path, path)
    click.echo(f"Copied the {entry.origin} recipe '{arg}' into ./{arg}: it is yours to edit, and later runs use it.", err=True)
    return path
