"""Trust before anything runs: a recipe says what it reaches beyond its folder, and a person agrees.

What needs trust is the recipe's reach (`reach.py`): code it runs, files outside
its folder it writes, hosts it sends data to and the keys they carry, secret
environment variables it passes on. A recipe with none of these never asks.

Trust belongs to the person, not to one workspace, so it is kept in the user
data folder (`trust.json`), keyed by the recipe's resolved location and held
against a digest of everything that can run: recipe.toml, every file of its
folder (links to folders followed; only overnight's own files are left out, which
no work folder receives: the `.overnight` folder, and a store a run of this recipe
kept in the folder with `--db`, which changes as runs write it: known by the run
that uses it and by the trust record, never by the file alone, which a recipe could
ship), and every path outside it that a
command or option names. A copy elsewhere is a different recipe and asks again;
a copy overnight itself makes (`recipes use`, `run NAME`) carries the trust of
an identical original. The surface's file is left out unless it is code the
metric may run (changing the surface is what overnight is for). A folder too
large to digest whole is refused, never digested in part.

`--yes` accepts for that one run and records nothing: trust on record is
always a decision someone made while reading what will run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

import click

from overnight.core.errors import OvernightError
from overnight.core.paths import TooLarge, named, walk

from .library import file_digest, home
from .printable import printable
from .reach import Reach, reach

# A recipe folder past these is a project, not a recipe: refused rather than digested in part.
MAX_FILES = 20_000
MAX_BYTES = 500 * 2**20
# Files kept in a trust record to say which changed when it asks again.
REMEMBERED_FILES = 5000
CODE_SUFFIXES = (".py", ".sh", ".bash", ".zsh", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl", ".php", ".lua", ".r", ".jl", ".ps1", ".bat", ".cmd")
INTERPRETERS = re.compile(r"^(sh|bash|zsh|dash|ksh|fish|source|\.|exec|node|deno|bun|ruby|perl|php|Rscript|julia|lua|python[0-9.]*|pypy[0-9.]*|\{python\})$")
# Programs and libraries of the system, not of any recipe: named by commands, never digested.
SYSTEM = tuple(Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/dev", "/proc", "/sys", "/opt/homebrew"))


def what_runs(recipe) -> list[str]:
    """One line per command or piece of code the recipe's plugins will run; empty when none."""
    return [printable(line) for line in reach(recipe).commands]


# -- the digest ----------------------------------------------------------------------


def digest(recipe, found: Reach | None = None) -> str:
    return _digest(recipe, found or reach(recipe))[0]


def _digest(recipe, found: Reach) -> tuple[str, dict[str, str]]:
    """sha256 over length-prefixed (kind, name, content digest) fields; and each file's digest by name."""
    folder = recipe.dir.resolve()
    h = hashlib.sha256()
    _field(h, b"overnight-trust-2")
    files: dict[str, str] = {}
    skip = _quiet_surface(recipe, found, folder)
    try:
        for rel, kind, value in _entries(folder, str(folder), skip, _stores(recipe, folder)):
            _fields(h, kind, rel, value)
            files[rel] = value[:16]
        for shown, path in _named_outside(recipe, found, folder):
            for rel, kind, value in _entries(path, shown, None):
                name = f"{shown}/{rel}" if rel else shown
                _fields(h, "outside-" + kind, name, value)
                files[name] = value[:16]
    except TooLarge as exc:
        raise OvernightError(f"Recipe '{printable(recipe.name)}' cannot be trusted: {exc.message}, so overnight cannot "
                             f"check what it runs; keep the recipe in a folder of its own. Nothing was run.") from None
    return h.hexdigest(), files


def _entries(path: Path, label: str, skip: str | None, stores: frozenset[str] = frozenset()):
    """(relative name, kind, digest or link target) for a file or every entry of a folder."""
    if path.is_file():
        yield "", "file", file_digest(path)
        return
    for rel, real, kind in walk(path, MAX_FILES, MAX_BYTES, label, stores):
        if rel == skip:
            continue
        if kind == "file":
            yield rel, "file", file_digest(real)
        else:
            yield rel, kind.partition(":")[0], kind.partition(":")[2]


_running: set[Path] = set()  # the stores this process's runs write (`ensure_trusted`)


def _stores(recipe, folder: Path) -> frozenset[str]:
    """The stores inside the folder that runs of this recipe write: on its trust record, or this run's.
    Only these are left out (if they are overnight stores); a store-like file the recipe ships is not."""
    mine = {p.relative_to(folder).as_posix() for p in _running if p.is_relative_to(folder)}
    return frozenset(mine | set(_records().get(_key(recipe), {}).get("stores", [])))


def _field(h, data: bytes) -> None:
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)


def _fields(h, *values: str) -> None:
    for value in values:
        _field(h, value.encode("utf-8", "surrogateescape"))


def _quiet_surface(recipe, found: Reach, folder: Path) -> str | None:
    """The surface's file, relative to the folder, when no code runs it: left out of the digest."""
    source = _surface_file(recipe)
    if source is None or not source.is_relative_to(folder) or _runnable(source, found, recipe, folder):
        return None
    return source.relative_to(folder).as_posix()


def _runnable(source: Path, found: Reach, recipe, folder: Path) -> bool:
    """Whether code may run the surface's file: a command or code file names it, a command hands
    `{file}` to an interpreter, it is executable or a script, or it is code beside code that runs."""
    if not found.runs_code:
        return False
    if any((folder / name).resolve() == source for name in found.code_files):
        return True
    for command in found.command_strings:
        words = _shell_words(command)
        for i, word in enumerate(words):
            if word == "{file}" and (i == 0 or INTERPRETERS.match(Path(words[i - 1]).name)):
                return True
            runs = i == 0 or INTERPRETERS.match(Path(words[i - 1]).name)
            if runs and _resolve(word, recipe, folder) == source:
                return True
    try:
        with open(source, "rb") as f:
            head = f.read(2)
        executable = os.stat(source).st_mode & 0o111
    except OSError:
        return False
    return bool(executable) or head == b"#!" or source.suffix.lower() in CODE_SUFFIXES


def _surface_file(recipe) -> Path | None:
    try:
        return recipe.surface.build(recipe.dir).source().resolve()
    except Exception:  # a surface that cannot be built yet fails later with its own message
        path = recipe.surface.options.get("path")
        return named(recipe.dir, path) if isinstance(path, str) else None


def _named_outside(recipe, found: Reach, folder: Path) -> list[tuple[str, Path]]:
    """Files and folders outside the recipe folder that its commands or options name (`python ../lib/x.py`,
    `PYTHONPATH = "../lib"`); the surface's own file of a recipe written in place only when code runs it."""
    named = {}
    strings = list(found.command_strings)
    for part in recipe.parts:
        if part.cls.runs_code:
            strings += [s for s in _strings(part.options) if "/" in s or s.startswith("~")]
    for text in strings:
        for word in _words(text):
            if "/" not in word and not word.startswith("~"):
                continue  # a plain name lies inside the folder, which is digested whole
            path = _resolve(word, recipe, folder)
            if path is None or path.is_relative_to(folder) or not path.exists() or _system(path):
                continue
            named.setdefault(str(path), path)
    source = _surface_file(recipe)
    if source is not None and not source.is_relative_to(folder) and source.exists() and _runnable(source, found, recipe, folder):
        named.setdefault(str(source), source)
    return sorted(named.items())


def _shell_words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return command.split()


def _words(command: str) -> list[str]:
    """The words of a command, and the parts of `KEY=VALUE`, `--opt=VALUE` and `<file` words."""
    out = []
    for word in _shell_words(command):
        out.append(word)
        for piece in re.split(r"[=:<>|;&,]+", word):
            if piece and piece != word:
                out.append(piece)
    return out


def _resolve(word: str, recipe, folder: Path) -> Path | None:
    word = word.replace("{recipe}", str(folder)).replace("{python}", sys.executable)
    if not word or "{" in word or "\0" in word:
        return None
    try:
        return (folder / Path(word).expanduser()).resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def _system(path: Path) -> bool:
    prefixes = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    return path == Path("/") or any(path.is_relative_to(p) for p in (*SYSTEM, *prefixes))


def _strings(value):
    if isinstance(value, str):
        if value and len(value) < 4096 and "\n" not in value:
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


# -- the record ----------------------------------------------------------------


def _file() -> Path:
    return home() / "trust.json"


def _records() -> dict:
    try:
        data = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    # Records of an older overnight were keyed by digest alone: they are not trust in a place.
    return data.get("recipes", {}) if isinstance(data, dict) and data.get("version") == 2 else {}


def _key(recipe) -> str:
    return str(Path(recipe.path).resolve())


def is_trusted(recipe, found: Reach | None = None) -> bool:
    """Trusted in this place as it is now; a recipe too large to digest is refused here, even with no record."""
    return _trusted_as(recipe, digest(recipe, found))


def _trusted_as(recipe, current: str) -> bool:
    record = _records().get(_key(recipe))
    return bool(record) and record.get("digest") == current


def record(recipe, found: Reach | None = None) -> None:
    found = found or reach(recipe)
    value, files = _digest(recipe, found)
    folder = recipe.dir.resolve()
    _save(_key(recipe), {
        "digest": value, "recipe": recipe.name, "trusted_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "reach": found.lines(), "files": files if len(files) <= REMEMBERED_FILES else {},
        "stores": sorted(_stores(recipe, folder)),
    })


def _save(key: str, entry: dict) -> None:
    records = _records()
    records[key] = entry
    _file().parent.mkdir(parents=True, exist_ok=True)
    tmp = _file().with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"version": 2, "recipes": records}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(_file())


def carry(source: Path, copy: Path) -> None:
    """A copy overnight made of a trusted recipe is trusted too, when nothing differs but its place."""
    from overnight.core.errors import RecipeError
    from overnight.core.recipe import load

    try:
        original, mine = load(source), load(copy)
        found = reach(original)
        if not found.needs_trust or not is_trusted(original, found):
            return
        if digest(mine) == _records()[_key(original)]["digest"]:
            _save(_key(mine), {**_records()[_key(original)], "copied_from": str(source)})
    except (RecipeError, OvernightError, KeyError):
        return


def _changed_since(recipe, found: Reach) -> tuple[dict, list[str]] | None:
    """The earlier trust of this recipe, in this place, and which files changed since."""
    before = _records().get(_key(recipe))
    if not before:
        return None
    _, files = _digest(recipe, found)
    old = before.get("files") or {}
    changed = sorted(n for n in set(old) | set(files) if old.get(n) != files.get(n)) if old else []
    return before, changed


def _terminal() -> bool:
    return sys.stdin.isatty()


def needs(found: Reach) -> str:
    what = []
    if found.runs_code:
        what.append("runs commands or code")
    if found.writes_outside:
        what.append("writes files outside its folder")
    if found.sends or found.unknown_llm:
        what.append("sends data to models")
    if found.env_passthrough and not found.runs_code:
        what.append("passes secret environment variables on")
    if found.notifies:
        what.append("sends notifications")
    return " and ".join(what) if len(what) < 3 else ", ".join(what[:-1]) + " and " + what[-1]


def show(recipe, lines: list[str], found: Reach | None = None) -> None:
    found = found or reach(recipe)
    head = "runs code on this machine" if found.runs_code and len(lines) == len(found.commands) else "reaches beyond its folder"
    click.echo(f"Recipe '{printable(recipe.name)}' ({printable(recipe.dir)}) {head}:", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    if found.runs_code:
        click.echo("Each runs in a fresh work folder, with your user's rights: read it before you trust it.", err=True)


def _accepted() -> set:
    """Recipes accepted with --yes in this command (by place and digest): shown once, never recorded."""
    ctx = click.get_current_context(silent=True)
    return ctx.find_root().meta.setdefault("overnight.trust.accepted", set()) if ctx else set()


def accepted(recipe, found: Reach | None = None) -> bool:
    """Accepted with --yes earlier in this command, as it is now."""
    return (_key(recipe), digest(recipe, found)) in _accepted()


def hosts(recipe, found: Reach | None = None) -> frozenset[tuple[str, str]]:
    """The (model, api_base) pairs the recipe names: what a trusted recipe's keys may be sent to."""
    return frozenset((s.model, s.host) for s in (found or reach(recipe)).sends if s.chosen)


def ensure_trusted(recipe, store=None, yes: bool = False) -> None:
    """Returns when the recipe may run; raises OvernightError when it may not.

    `store` is the one the run writes: kept in the recipe folder, it is left out of the digest
    (and remembered on the trust record). Trust lives in the user data folder.
    """
    if getattr(store, "path", None) is not None:
        _running.add(Path(store.path).resolve())
    found = reach(recipe)
    if not found.needs_trust:
        return
    current = digest(recipe, found)  # once: it reads the whole folder
    if _trusted_as(recipe, current) or (_key(recipe), current) in _accepted():
        return
    lines = found.lines()
    if yes:
        show(recipe, lines, found)
        click.echo("Trusted for this run (--yes).", err=True)
        _accepted().add((_key(recipe), current))
        return
    if not _terminal():
        earlier = _records().get(_key(recipe))  # trusted once, then changed: the person should know which
        trusted = (f"it changed since you trusted it on {earlier.get('trusted_at', 'an earlier day')}"
                   if isinstance(earlier, dict) and earlier.get("digest") else "you have not trusted it")
        raise OvernightError(
            f"Recipe '{printable(recipe.name)}' {needs(found)} ({len(lines)} listed by "
            f"`overnight recipes show {printable(recipe.dir)}`) and {trusted}: run it from a terminal "
            f"to review and trust it, or pass --yes."
        )
    ask(recipe, lines, found)


def review(recipe, yes: bool = False) -> list[str]:
    """Trust ahead of a run (`overnight recipes trust`); returns what it reaches, empty when there is nothing to trust.

    Unlike a run's --yes, a --yes here is the person's decision and is recorded.
    """
    found = reach(recipe)
    lines = found.lines()
    if not found.needs_trust:
        return []
    if yes:
        show(recipe, lines, found)
        record(recipe, found)
        return lines
    if not _terminal():
        raise OvernightError(f"Trusting recipe '{printable(recipe.name)}' needs a terminal to ask you; pass --yes to trust it as it is.")
    ask(recipe, lines, found)
    return lines


def ask(recipe, lines: list[str], found: Reach | None = None) -> None:
    """Shows what it reaches and records the person's yes; a no stops here with nothing run."""
    found = found or reach(recipe)
    earlier = _changed_since(recipe, found)
    if earlier:
        before, changed = earlier
        which = f": {', '.join(printable(n) for n in changed[:5])}{' and more' if len(changed) > 5 else ''}" if changed else ""
        click.echo(f"This recipe changed since you trusted it on {before.get('trusted_at', 'an earlier day')}{which}.", err=True)
    show(recipe, lines, found)
    if not click.confirm("Trust this recipe and let it run?", default=False, err=True):
        raise OvernightError(f"Recipe '{printable(recipe.name)}' was not trusted: nothing was run.")
    record(recipe, found)
    click.echo(f"Trusted: '{printable(recipe.name)}' will not ask again until it changes.", err=True)
