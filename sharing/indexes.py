"""Indexes: TOML files, added by path or URL, that map recipe names to sources and digests.

    [recipes.loan-plus]
    source = "loan-plus.tar.gz"        # anything `overnight recipes install` takes; relative to the index
    sha256 = "9f86d0..."               # the archive's sha256 (or, for a folder or git source, the recipe digest)
    summary = "Loans with a balloon payment"

An index is read when it is added and again whenever a name is looked up, so
an edit to it counts at once; the copy kept from its last good read stands in
when its source cannot be read, and every command that uses it says so, with
its date (entries withdrawn since are still in it).

An index on the network is a stranger's file: its entries may point only at
the network (https, git over https or ssh, GitHub), never at this machine's
files, `git+file://` repositories or servers on this machine, unless the
index itself is served from this machine.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from overnight.core.errors import OvernightError

from .library import NAME, home
from .sources import HEX64, check_url, is_loopback, read_url


@dataclass
class IndexEntry:
    name: str  # the recipe's name in the index
    source: str  # resolved against the index's own location
    sha256: str | None
    summary: str
    index: str  # which index it came from
    stale: str = ""  # when the copy used was read, if the index itself could not be read now


def _folder() -> Path:
    return home() / "indexes"


def _registry_file() -> Path:
    return _folder() / "indexes.json"


def _registry() -> dict:
    try:
        return json.loads(_registry_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save(registry: dict) -> None:
    _folder().mkdir(parents=True, exist_ok=True)
    tmp = _registry_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(registry, indent=2) + "\n", encoding="utf-8")
    tmp.replace(_registry_file())


def _is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text))


def _read(source: str) -> bytes:
    if _is_url(source):
        check_url(source, f"The index {source}")
        return read_url(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise OvernightError(f"Cannot read the index {source}: {exc.strerror or exc}.") from None


def parse(text: str, source: str) -> dict[str, IndexEntry]:
    """The entries of an index; every problem in it is named at once."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        doc = tomlkit.parse(text).unwrap()
    except ParseError as exc:
        raise OvernightError(f"The index {source} is not valid TOML (line {exc.line}, column {exc.col}): nothing was added.") from None
    recipes = doc.get("recipes")
    if not isinstance(recipes, dict):
        raise OvernightError(f"The index {source} has no [recipes] table: write one [recipes.NAME] table per recipe, with 'source' and 'sha256'.")
    problems, out = [], {}
    for name, entry in recipes.items():
        where = f"[recipes.{name}]"
        if not NAME.match(name):
            problems.append(f"{where}: {name!r} is not a recipe name (letters, digits, '.', '_' and '-')")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a table with 'source' and 'sha256'")
            continue
        unknown = sorted(set(entry) - {"source", "sha256", "summary"})
        if unknown:
            problems.append(f"{where}: unknown key '{unknown[0]}'; an entry takes source, sha256 and summary")
        src, sha, summary = entry.get("source"), entry.get("sha256"), entry.get("summary", "")
        if not isinstance(src, str) or not src:
            problems.append(f"{where}: missing key 'source' (a folder, archive, URL or git URL)")
            continue
        if sha is not None and not (isinstance(sha, str) and HEX64.match(sha)):
            problems.append(f"{where}: 'sha256' must be 64 hexadecimal characters")
            continue
        resolved = _against(src, source)
        wrong = _remote_problem(resolved, source)
        if wrong:
            problems.append(f"{where}: source {src!r} {wrong}")
            continue
        out[name] = IndexEntry(name, resolved, sha.lower() if sha else None, str(summary), "")
    if problems:
        raise OvernightError(f"The index {source} has problems: " + "; ".join(problems) + ".")
    return out


def _remote_problem(entry: str, index_source: str) -> str | None:
    """Why an entry of an index on the network may not point where it does; None when it may."""
    if not _is_url(index_source) or is_loopback(index_source):
        return None
    if entry.startswith("git+file:") or entry.startswith("file:"):
        return "points at this machine's files, which an index on the network may not name"
    if entry.startswith("gh:"):
        return None
    url = entry[4:] if entry.startswith("git+") else entry
    if not _is_url(url):
        return "points at this machine's files, which an index on the network may not name"
    if is_loopback(url):
        return "points at a server on this machine, which an index on the network may not name"
    return None


def _against(entry_source: str, index_source: str) -> str:
    """An entry's source, read relative to where the index itself lives."""
    if entry_source.startswith(("gh:", "git+")) or _is_url(entry_source) or Path(entry_source).is_absolute():
        return entry_source
    if _is_url(index_source):
        return urljoin(index_source, entry_source)
    return str(Path(index_source).parent / entry_source)


def add(source: str, name: str | None = None, force: bool = False) -> tuple[str, int]:
    if not _is_url(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise OvernightError(f"There is no index file at {source}: give the path or https URL of a TOML file.")
        source = str(path.resolve())
    raw = _read(source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OvernightError(f"The index {source} is not a UTF-8 text file: nothing was added.") from None
    entries = parse(text, source)
    if name is None:
        stem = Path(urlsplit(source).path if _is_url(source) else source).name
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem.removesuffix(".toml")).strip("-.") or "index"
    if not NAME.match(name):
        raise OvernightError(f"{name!r} is not a name for an index (letters, digits, '.', '_' and '-').")
    registry = _registry()
    known = registry.get(name)
    if known and known["source"] != source and not force:
        raise OvernightError(f"An index named '{name}' is already added (from {known['source']}): pick --name or pass --force to replace it.")
    registry[name] = {"source": source, "added_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    _folder().mkdir(parents=True, exist_ok=True)
    (_folder() / f"{name}.toml").write_text(text, encoding="utf-8")
    _save(registry)
    return name, len(entries)


def remove(name: str) -> None:
    registry = _registry()
    if name not in registry:
        raise OvernightError(f"There is no index named '{name}' (see `overnight recipes index list`).")
    del registry[name]
    _save(registry)
    (_folder() / f"{name}.toml").unlink(missing_ok=True)


def indexes() -> list[dict]:
    """Each added index with its entries (or why it cannot be read now)."""
    out = []
    for name, info in _registry().items():
        row = {"name": name, "source": info["source"], "added_at": info.get("added_at", ""), "entries": {}, "error": "", "stale": ""}
        try:
            row["entries"] = _entries(name, info["source"])
            row["stale"] = next((e.stale for e in row["entries"].values() if e.stale), "")
        except OvernightError as exc:
            row["error"] = exc.message
        out.append(row)
    return out


def _entries(name: str, source: str) -> dict[str, IndexEntry]:
    """The index as it is now (and kept as the fallback copy), else its last good copy, marked stale."""
    cached = _folder() / f"{name}.toml"
    stale = ""
    try:
        raw = _read(source)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OvernightError(f"The index {source} is not a UTF-8 text file.") from None
        entries = parse(text, source)
        cached.write_text(text, encoding="utf-8")
    except OvernightError as exc:
        if not cached.exists():
            raise
        import click

        stale = time.strftime("%Y-%m-%d %H:%M", time.localtime(cached.stat().st_mtime))
        click.echo(f"Note: the index '{name}' cannot be read from {source} now ({exc.message.rstrip('.')}); "
                   f"using its copy from {stale}, which may still offer recipes withdrawn since.", err=True)
        entries = parse(cached.read_text(encoding="utf-8"), source)
    for entry in entries.values():
        entry.index = name
        entry.stale = stale
    return entries


def resolve(recipe: str) -> IndexEntry | None:
    """The first index entry with this name, in the order the indexes were added."""
    for name, info in _registry().items():
        entries = _entries(name, info["source"])
        if recipe in entries:
            return entries[recipe]
    return None
