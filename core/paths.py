"""Paths a recipe names stay inside its folder, and a folder's state can be compared before and after.

A recipe is shared with strangers, so every path it names (its surface, data
files, recipients, proposals, rubric files, a metric's `json_file`) must
resolve inside the recipe folder once symlinks, symlinked parents, `..` and
absolute paths are followed. The one exception is the surface of a recipe the
person wrote in place: it may name their own file elsewhere, which the trust
prompt lists and `apply` names. An installed or bundled ("sealed") recipe never
leaves its folder.

`Fingerprint` lets a caller notice that a measurement changed the user's
folder without reading every file again: stat fields (ctime cannot be set back
by the process that wrote), and the content of files written in the last two
seconds, whose times a rewrite within the same clock tick would not change.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .errors import OvernightError

# Option keys that name a file of the recipe, when a plugin declares nothing else.
PATH_KEYS = frozenset({"path", "file", "recipients", "instructions", "json_file"})
# Keys that hold either text or a file name (a rubric): checked when they read as a file name.
TEXT_OR_PATH_KEYS = frozenset({"rubric"})
# The runs' own folder (store, work files, backups, an installed recipe's manifest): never the recipe's.
OWN_FOLDER = ".overnight"
MANIFEST = Path(OWN_FOLDER) / "manifest.json"

# Other ways to recognize an installed recipe's folder; overnight.sharing adds its library root.
_sealers: list[Callable[[Path], bool]] = []


class TooLarge(OvernightError):
    """A folder with more files or bytes than a digest or fingerprint reads."""


def named(recipe_dir: Path, value: str) -> Path:
    """The path a recipe's `value` names, resolved against its folder: a leading `~` is the home folder,
    as in a shell (`~/notes/prompt.txt`), so it is checked as the absolute path it is."""
    return (Path(recipe_dir) / os.path.expanduser(value)).resolve()


def inside(recipe_dir: Path, value: str, key: str) -> Path:
    """The path `value` names, resolved; raises when it leads outside `recipe_dir`."""
    root = Path(recipe_dir).resolve()
    try:
        path = named(root, value)
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop, a NUL byte
        raise OvernightError(f"{key} = {value!r} cannot be resolved ({exc}).") from None
    if not path.is_relative_to(root):
        raise OvernightError(f"{key} = {value!r} resolves to {path}, outside the recipe folder {root}")
    return path


def roles(cls) -> dict[str, str]:
    """What each option key of a plugin class is: "path", "code", "command", "model", "api_base", "env".

    A plugin may declare `option_roles = {"key": "role", ...}`; undeclared keys follow
    the names the built-in plugins use.
    """
    declared = dict(getattr(cls, "option_roles", None) or {})
    for key in getattr(cls, "options", {}) or {}:
        if key in declared:
            continue
        if key in PATH_KEYS:
            declared[key] = "path"
        elif key in TEXT_OR_PATH_KEYS:
            declared[key] = "text_or_path"
        elif key == "model" or key.endswith("_model"):
            declared[key] = "model"
        elif key == "api_base" or key.endswith("_api_base"):
            declared[key] = "api_base"
        elif key == "env_passthrough":
            declared[key] = "env"
    return declared


def refusals(surface, others, recipe_dir: Path, sealed: bool) -> list[tuple[str, str, str]]:
    """(section, key, sentence) for every path the recipe's parts name that leaves its folder.

    The surface's `path` of a recipe written in place may point outside (a declared
    capability); parts that failed to read (None) are skipped.
    """
    found = []
    for part in [surface, *others]:
        if part is None:
            continue
        for key, role in roles(part.cls).items():
            value = part.options.get(key)
            if role not in ("path", "code", "text_or_path") or not isinstance(value, str) or not value:
                continue
            if role == "text_or_path" and not _reads_as_file(recipe_dir, value):
                continue
            try:
                inside(recipe_dir, value, key)
            except OvernightError as exc:
                if part is surface and key == "path" and not sealed:
                    continue  # the person's own file, outside a recipe they wrote: listed by trust
                where = "an installed or bundled recipe's paths stay inside its folder" if sealed else \
                    "only the surface's path of a recipe you wrote may point outside it"
                found.append((part.section, key, f"{exc.message}; {where}"))
    return found


def _reads_as_file(recipe_dir: Path, value: str) -> bool:
    text = value.strip()
    if "\n" in text or not text:
        return False
    return text.lower().endswith((".md", ".txt", ".markdown")) or named(recipe_dir, text).exists()


def sealed(folder: Path) -> bool:
    """True for a bundled or installed recipe: its paths never leave its folder."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return True
    if any(check(folder) for check in _sealers):
        return True
    bundled = _bundled_root()
    return bundled is not None and folder.resolve().is_relative_to(bundled)


def add_sealer(check: Callable[[Path], bool]) -> None:
    if check not in _sealers:
        _sealers.append(check)


def _bundled_root() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("overnight.recipes")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location).resolve()
    return None


# -- walking a folder ---------------------------------------------------------------


def walk(folder: Path, max_files: int, max_bytes: int, label: str = "",
         stores: frozenset[str] = frozenset()) -> Iterator[tuple[str, Path | None, str]]:
    """Every entry under `folder`, sorted, links to folders followed (each real folder once).

    Yields (relative POSIX path, path or None, kind): kind is "file", or "link" for a
    link whose target was already walked, a loop, or points nowhere (path None then,
    and the relative path carries the target). What is overnight's own is left out: the
    top-level `.overnight` folder, and each of `stores` (relative paths) that is an
    overnight store, with the files SQLite keeps beside it; nothing else is. Raises
    TooLarge past the limits, before anything partial is used.
    """
    from .store import SIDE_FILES, is_store

    root = Path(folder)
    seen = {root.resolve()}
    files = size = 0
    stack = [(root, "")]
    while stack:
        top, prefix = stack.pop()
        try:
            names = sorted(os.listdir(top))
        except OSError as exc:
            raise OvernightError(f"Cannot read the folder {top}: {exc.strerror or exc}.") from None
        later = []
        own = {n for n in names if f"{prefix}{n}" in stores and is_store(top / n)}
        own |= {n + end for n in own for end in SIDE_FILES}
        for name in names:
            if (not prefix and name == OWN_FOLDER) or name in own:
                continue
            path = top / name
            rel = f"{prefix}{name}"
            if path.is_dir():
                real = path.resolve()
                if real in seen:
                    yield rel, None, f"link:{os.readlink(path) if path.is_symlink() else real}"
                    continue
                seen.add(real)
                later.append((path, rel + "/"))
            elif path.is_file():
                files += 1
                size += path.stat().st_size
                if files > max_files or size > max_bytes:
                    what = label or str(root)
                    raise TooLarge(f"{what} is too large to check ({files:,}+ files or {size // 2**20:,}+ MB; "
                                   f"the limit is {max_files:,} files and {max_bytes // 2**20:,} MB)")
                yield rel, path, "file"
            elif path.is_symlink():
                yield rel, None, f"link:{os.readlink(path)}"
            else:
                yield rel, None, "special"
        stack.extend(reversed(later))


# -- noticing a change ---------------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    """What a folder (or one file) looks like on disk: names, sizes, times, modes, link targets.

    `check` runs after every measurement, so it first looks the cheap way: one `lstat` of each
    path it knows (a folder's times change when a name in it appears or goes), the content of
    files and the names of folders whose times a change within the same clock tick would not
    move. Only when that look differs is the folder walked again, to name what changed."""

    root: Path
    entries: dict
    quick: list = field(default_factory=list, compare=False)  # [(path, stat fields, content or None, top)]
    skip: frozenset = field(default_factory=frozenset, compare=False)

    @classmethod
    def of(cls, path: Path, max_files: int = 20_000, hashed: frozenset = frozenset(),
           skip: frozenset = frozenset()) -> "Fingerprint":
        """`hashed` names files whose content is read whatever their age (those an earlier look read);
        `skip` holds relative paths left out (overnight's store, when the person keeps it in the folder)."""
        path = Path(path)
        now = time.time_ns()
        if not path.is_dir():
            entry = _stat(path, now, "" in hashed)
            return cls(path, {"": entry}, [_quick(str(path), entry, now)])
        entries, quick = {}, [_quick(str(path), _stat(path, now), now, top=True)]
        for top, dirs, names in os.walk(path):
            rel_top = Path(top).relative_to(path)
            if rel_top == Path("."):
                dirs[:] = [d for d in dirs if d != OWN_FOLDER]
                names = [n for n in names if n != OWN_FOLDER]
            for name in dirs + names:
                rel = (rel_top / name).as_posix()
                if rel in skip:
                    continue
                entries[rel] = _stat(Path(top) / name, now, rel in hashed)
                quick.append(_quick(os.path.join(top, name), entries[rel], now))
                if len(entries) > max_files:
                    raise TooLarge(f"{path} has more than {max_files:,} files to watch")
        return cls(path, entries, quick, skip)

    def changed(self, later: "Fingerprint") -> list[str]:
        """Paths that appeared, vanished or changed between this fingerprint and `later`, sorted."""
        names = set(self.entries) | set(later.entries)
        return sorted(n for n in names if not _same(self.entries.get(n), later.entries.get(n)))

    def check(self, what: str = "the recipe folder") -> None:
        """Raises naming the first changed file when the folder is not as it was."""
        looked = time.time_ns()
        if self.quick and all(_looks_same(*q) for q in self.quick):
            if any(q[2] is not None for q in self.quick):
                self.quick[:] = [_settled(q, looked) for q in self.quick]
            return
        hashed = frozenset(n for n, e in self.entries.items() if e and e[-1])
        now = Fingerprint.of(self.root, hashed=hashed, skip=self.skip)
        changed = self.changed(now)
        if changed:
            first = self.root / changed[0] if changed[0] else self.root
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise OvernightError(f"A measurement changed {first}{more} in {what}, which metrics may only read; the run stops.")
        self.quick[:] = now.quick  # the same as it was (a folder's own times moved): looked at the cheap way again


RACY_NS = 2_000_000_000


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a[:-1] == b[:-1] and (a[-1] is None or b[-1] is None or a[-1] == b[-1])


def _stat(path: Path, now: int, hashed: bool = False):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    target = os.readlink(path) if os.path.islink(path) else None
    content = None
    if target is None and os.path.isfile(path) and (hashed or now - st.st_mtime_ns < RACY_NS):
        content = _digest(path)
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, target, content)


def _digest(path) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return "unreadable"


def _quick(path: str, entry, now: int, top: bool = False) -> tuple:
    """What the cheap look compares for one path: its stat fields, and what a change within the
    clock tick of its times would hide (a file's content, a folder's names)."""
    if entry is None:
        return path, None, None, top
    content = entry[-1]
    if stat.S_ISDIR(entry[0]) and now - entry[2] < RACY_NS:
        content = _names(path, top)
    return path, entry[:5], content, top


def _settled(quick: tuple, looked: int) -> tuple:
    """A path's cheap look without its content (or names) once its times are too old to hide a
    change: it was seen as it was at `looked`, and a change since would move its times."""
    path, fields, content, top = quick
    if content is not None and fields is not None and looked - fields[2] >= RACY_NS:
        return path, fields, None, top
    return quick


def _names(path: str, top: bool) -> tuple:
    try:
        return tuple(sorted(n for n in os.listdir(path) if not (top and n == OWN_FOLDER)))
    except OSError:
        return ()


def _looks_same(path: str, fields, content, top: bool) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return fields is None
    if fields is None or (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != fields:
        return False
    if content is None:
        return True
    if isinstance(content, tuple):
        return _names(path, top) == content
    return _digest(path) == content
