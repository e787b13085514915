"""Installing, updating and removing recipes in the user data folder.

Installing never runs anything from the recipe: it fetches the source into a
staging folder, checks the pinned digest before unpacking, unpacks with no way
out, reads recipe.toml, and only then moves the folder into place in one
rename. Any failure deletes the staging folder, so nothing is kept; so does
SIGTERM (as Ctrl-C does), and a staging folder left by a process that was
killed outright is removed by the next install.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from overnight.core.errors import OvernightError, RecipeError

from . import indexes, sources
from .library import NAME, RECIPE_FILE, Entry, bundled, folder_digest, installed_root, lookup, write_manifest


def install(text: str, sha256: str | None = None, name: str | None = None, force: bool = False) -> Entry:
    source = sources.parse(text)
    facts: dict = {}
    if source.kind == "index":
        found = indexes.resolve(source.location)
        if found is None:
            raise OvernightError(
                f"Unknown source {text!r}: it is not a folder, a .zip or .tar.gz file, an https or git URL, "
                f"gh:owner/repo, or a name in your indexes (see `overnight recipes index list`)."
            )
        facts = {"index": found.index, "resolved": found.source, "update_from": text, "pinned": bool(found.sha256 or sha256)}
        if found.stale:
            facts["index_copy"] = found.stale
        if sha256 and found.sha256 and sha256.lower() != found.sha256:
            raise OvernightError(f"--sha256 {sha256} differs from the digest the index '{found.index}' gives for '{text}': refused, nothing was installed.")
        sha256 = sha256 or found.sha256
        name = name or found.name
        source = sources.parse(found.source)
        if source.kind == "index":
            raise OvernightError(f"The index '{found.index}' maps '{text}' to {found.source!r}, which is not a folder, archive or URL.")
    root = installed_root()
    staging_root = root.parent / ".staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    sweep(staging_root)
    staging = Path(tempfile.mkdtemp(prefix=f"install-{os.getpid()}-", dir=staging_root))
    try:
        with _stopped_by_sigterm():
            return _install(text, source, staging, root, sha256, name, force, facts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install(text, source, staging: Path, root: Path, sha256, name, force, facts) -> Entry:
    folder, fetched = sources.fetch(source, staging, sha256)
    if source.kind in ("folder", "archive"):
        facts.setdefault("update_from", str(Path(source.location).resolve()))
    recipe = _check(folder, text)
    name = name or recipe.name
    target = _target(name, force)
    digest = folder_digest(folder)
    manifest = {
        "name": name, "source": text, "sha256": sha256, "digest": digest,
        "installed_at": time.strftime("%Y-%m-%d %H:%M:%S"), **facts, **fetched,
    }
    write_manifest(folder, manifest)
    root.mkdir(parents=True, exist_ok=True)
    aside = staging / "previous"
    try:
        if target.exists():
            # --force or update: the old folder goes aside first, so a crash leaves one or the other whole.
            target.rename(aside)
        folder.rename(target)
    except OSError as exc:
        if aside.exists() and not target.exists():
            aside.rename(target)
        raise OvernightError(f"Cannot move '{name}' into {root} ({exc.strerror or exc}); was another install of it running? Nothing was changed.") from None
    return Entry(name, target, "installed", manifest)


# Staging folders of processes that are gone (killed with SIGKILL, a power cut) are removed after this.
STALE_SECONDS = 24 * 3600


def sweep(staging_root: Path) -> None:
    """Removes the staging folders of installs whose process is gone."""
    for folder in staging_root.iterdir():
        m = re.match(r"^install-(\d+)-", folder.name)
        try:
            old = time.time() - folder.stat().st_mtime > STALE_SECONDS
        except OSError:
            continue
        if old or not m or not _alive(int(m.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Terminated(OvernightError):
    """SIGTERM during an install: the staging folder goes, as on Ctrl-C."""


@contextlib.contextmanager
def _stopped_by_sigterm():
    """Turns SIGTERM into an exception for the install's length, so every `finally` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated("Stopped by SIGTERM: nothing was installed.", exit_code=143)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check(folder: Path, source: str):
    """The recipe must read cleanly (every problem listed); nothing of it runs."""
    from overnight.core.recipe import parse

    file = folder / RECIPE_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OvernightError(f"Cannot read the {RECIPE_FILE} of {source}: {exc}. Nothing was installed.") from None
    try:
        # Checked where it will live: an installed recipe's paths never leave its folder.
        return parse(text, file.resolve(), sealed=True)
    except RecipeError as exc:
        count = len(exc.problems)
        head = f"The recipe from {source} is not valid ({count} problem{'s' if count != 1 else ''}); nothing was installed:"
        # Named as the person knows it, not by the staging folder it was checked in.
        staged = str(folder.resolve())
        named = [p.replace(staged, source).replace(str(Path(staged).parent), f"{source}/..") for p in exc.problems]
        raise RecipeError([head, *named]) from None


def _target(name: str, force: bool) -> Path:
    if not NAME.match(name):
        raise OvernightError(f"{name!r} is not a recipe name (letters, digits, '.', '_' and '-'): pass --name NAME.")
    if any(e.name == name for e in bundled()):
        raise OvernightError(f"'{name}' is the name of a bundled recipe: install this one under another name with --name.")
    target = installed_root() / name
    if target.exists() and not force:
        raise OvernightError(f"A recipe named '{name}' is already installed: pass --force to replace it, or --name to keep both.")
    return target


def remove(name: str) -> Path:
    entry = lookup(name)
    if entry is None or entry.origin != "installed":
        if entry is not None:
            raise OvernightError(f"'{name}' is a bundled recipe: it comes with overnight and cannot be removed.")
        raise OvernightError(f"There is no installed recipe named '{name}' (see `overnight recipes list`).")
    shutil.rmtree(entry.path)
    return entry.path


def update(name: str, sha256: str | None = None) -> tuple[Entry, str]:
    """Installs the recipe again from the source it came from; returns it and its previous digest."""
    entry = lookup(name)
    if entry is None or entry.origin != "installed":
        if entry is not None:
            raise OvernightError(f"'{name}' is a bundled recipe: it is updated with overnight itself.")
        raise OvernightError(f"There is no installed recipe named '{name}' to update (see `overnight recipes list`).")
    source = entry.manifest.get("update_from") or entry.manifest.get("source")
    if not source:
        raise OvernightError(f"The installed recipe '{name}' has no manifest saying where it came from: install it again with --force.")
    previous = entry.manifest.get("digest", "")
    # An index entry may have moved to a new version and digest; a pinned archive stays pinned.
    pin = sha256 or (None if entry.manifest.get("index") else entry.manifest.get("sha256"))
    try:
        return install(source, pin, name, force=True), previous
    except OvernightError as exc:
        if pin and "not the expected" in exc.message:
            raise OvernightError(f"{exc.message} If the new version is the one you want, pass its digest: "
                                 f"overnight recipes update {name} --sha256 NEW.") from None
        raise
