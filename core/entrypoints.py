"""The entry points of overnight's groups, found without importing importlib.metadata.

Every command that reads a recipe looks for plugins, and importing importlib.metadata to scan
every installed package costs as much as the rest of reading the recipe. For the folders on
sys.path, this reads the same files in the same order as importlib.metadata (the first
`NAME-*.dist-info` or `NAME.egg-info` of each name wins) and parses only the entry_points.txt
that name a group asked for. Wherever the two could differ (a zip or an egg on sys.path,
another finder of distributions on sys.meta_path than the standard one or importlib_metadata's,
an unusual file) importlib.metadata answers.
tests/test_entry_points.py holds both to the same answer.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import import_module
from importlib.machinery import PathFinder

SUFFIXES = (".dist-info", ".egg-info")
# importlib.metadata.EntryPoint.pattern: `module`, `module:attr`, `module:attr [extras]`.
VALUE = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"


class EntryPoint:
    """What the plugin manager reads of an entry point. Its distribution is made when asked
    (`overnight plugins` shows its version): reading a package's metadata costs milliseconds."""

    __slots__ = ("name", "value", "group", "dist_name", "_folder", "_found")

    def __init__(self, name: str, value: str, group: str, dist_name: str, folder: str | None = None, found=None):
        self.name, self.value, self.group, self.dist_name = name, value, group, dist_name
        self._folder, self._found = folder, found  # found: importlib.metadata's own entry point

    @property
    def dist(self):
        if self._found is not None:
            return self._found.dist
        from importlib.metadata import PathDistribution
        from pathlib import Path

        return PathDistribution(Path(self._folder))

    def load(self):
        if self._found is not None:
            return self._found.load()
        match = re.match(VALUE, self.value)
        found = import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            found = getattr(found, attr)
        return found

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def find(groups: tuple[str, ...]) -> list[EntryPoint]:
    """Every entry point of `groups`, in importlib.metadata's order within each group."""
    found = scan(groups)
    return found if found is not None else by_importlib(groups)


def scan(groups: tuple[str, ...]) -> list[EntryPoint] | None:
    """The folders' answer; None where only importlib.metadata can give it."""
    if not all(_reads_folders(f) for f in sys.meta_path if getattr(f, "find_distributions", None) is not None):
        return None
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path:
        folders = _folders(entry)
        if folders is None:
            return None
        for name, folder in folders:
            if name in seen:  # the first of a name on sys.path is the one installed
                continue
            seen.add(name)
            read = _read(folder, name, groups)
            if read is None:
                return None
            found += read
    return found


def _reads_folders(finder) -> bool:
    """A finder of distributions that reads sys.path's folders as this module does: the standard
    library's, or importlib_metadata's, which takes its place once that package is imported."""
    kind = type(finder)
    return finder is PathFinder or (kind.__module__, kind.__name__) == ("importlib_metadata", "MetadataPathFinder")


def _folders(entry) -> list[tuple[str, str]] | None:
    """(normalized name, folder) of each distribution in a sys.path entry, as importlib.metadata
    lists them: the directory's order, those of one name together."""
    if not isinstance(entry, str):
        return None
    try:
        children = os.listdir(entry or ".")
    except OSError:
        return None if os.path.isfile(entry) else []  # a zip or an egg file; or nothing there
    if os.path.basename(entry).lower().endswith(".egg"):
        return None
    infos: dict[str, list[str]] = {}
    for child in children:
        if child.lower().endswith(SUFFIXES):
            if not child.endswith(SUFFIXES):  # importlib.metadata would take its name from its metadata
                return None
            name = _normalize(child.rpartition(".")[0].partition("-")[0])
            infos.setdefault(name, []).append(os.path.join(entry, child))
    return [(name, folder) for name, folders in infos.items() for folder in folders]


def _read(folder: str, dist_name: str, groups: tuple[str, ...]) -> list[EntryPoint] | None:
    """The entry points of `groups` in a distribution's entry_points.txt, read as importlib.metadata
    reads it; None for a line it would not read (it then says what is wrong)."""
    try:
        with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as f:
            text = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return []
    if not any(group in text for group in groups):
        return []
    found, section = [], None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section in groups:
            name, equals, value = line.partition("=")
            if not equals:
                return None
            found.append(EntryPoint(name.strip(), value.strip(), section, dist_name, folder))
    return found


def by_importlib(groups: tuple[str, ...]) -> list[EntryPoint]:
    import importlib.metadata

    everything = importlib.metadata.entry_points()
    return [EntryPoint(ep.name, ep.value, ep.group, _dist_name(ep.dist), found=ep)
            for group in groups for ep in everything.select(group=group)]


def _dist_name(dist) -> str:
    # From its folder's name (overnight-0.1.0.dist-info) where it has one: parsing metadata costs milliseconds.
    return _normalize(getattr(dist, "_normalized_name", None) or dist.name) if dist is not None else ""


def _normalize(name: str) -> str:
    """PEP 503, dashes as underscores: importlib.metadata's `Prepared.normalize`."""
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
