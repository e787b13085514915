"""Unpacking a recipe archive with no way out of the destination folder.

Nothing is extracted by tarfile or zipfile themselves: every entry's name is
checked (no absolute path, no `..`), only plain files and folders are written,
and a link is never created on disk. A link whose target stays inside the
archive becomes a copy of that target; one that points outside refuses the
whole archive. Sizes are counted as bytes are written, so a header that lies
about its size does not get past the limit.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

from overnight.core.errors import OvernightError

# Limits for one recipe; generous for a recipe with its example data, small for a disk.
MAX_BYTES = 200 * 2**20
MAX_FILES = 5000


class Refused(OvernightError):
    """An archive that is unsafe or unreadable; nothing of it is kept."""


def kind(path: Path) -> str | None:
    """"zip" or "tar" from the file's first bytes (names and servers can lie)."""
    with open(path, "rb") as f:
        head = f.read(262)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00") or head[257:262] == b"ustar":
        return "tar"
    return None


def unpack(archive: Path, dest: Path, label: str) -> None:
    """Unpacks `archive` into the empty folder `dest`; `label` names the archive in messages."""
    found = kind(archive)
    if found is None:
        raise Refused(f"{label} is not a .zip or .tar.gz archive (its first bytes are neither): nothing was installed.")
    writer = _Writer(dest, label)
    try:
        if found == "zip":
            _unzip(archive, writer)
        else:
            _untar(archive, writer)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OvernightError):
            raise
        raise Refused(f"{label} is a corrupt or unreadable archive ({exc}): nothing was installed.") from None
    writer.resolve_links()


class _Writer:
    """Writes checked entries under one folder and counts what it wrote."""

    def __init__(self, dest: Path, label: str):
        self.dest = dest
        self.label = label
        self.files = 0
        self.bytes = 0
        self.links: list[tuple[tuple[str, ...], tuple[str, ...], str]] = []  # (where, target, entry name)

    def refuse(self, name: str, why: str) -> Refused:
        return Refused(f"{self.label} is refused: entry {name!r} {why}. Nothing was installed.")

    def parts(self, name: str) -> tuple[str, ...]:
        if "\0" in name:
            raise self.refuse(name, "has a NUL character in its name")
        clean = name.replace("\\", "/")
        if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
            raise self.refuse(name, "has an absolute path")
        parts = tuple(p for p in clean.split("/") if p not in ("", "."))
        if ".." in parts:
            raise self.refuse(name, "would be written outside the recipe folder ('..' in its path)")
        return parts

    def count(self, name: str) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise Refused(f"{self.label} is refused: it holds more than {MAX_FILES} files. Nothing was installed.")

    def folder(self, name: str) -> None:
        parts = self.parts(name)
        if parts:
            self.dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)

    def file(self, name: str, stream, executable: bool) -> None:
        parts = self.parts(name)
        if not parts:
            return
        self.count(name)
        target = self.dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while block := stream.read(1 << 16):
                self.bytes += len(block)
                if self.bytes > MAX_BYTES:
                    raise Refused(f"{self.label} is refused: it unpacks to more than {MAX_BYTES // 2**20} MB. Nothing was installed.")
                out.write(block)
        target.chmod(0o755 if executable else 0o644)

    def link(self, name: str, target: str, relative_to_entry: bool) -> None:
        """Remembers a link to copy once every file is out; refuses one that leads outside."""
        parts = self.parts(name)
        self.count(name)
        if target.startswith("/") or re.match(r"^[A-Za-z]:", target.replace("\\", "/")):
            raise self.refuse(name, f"is a link to an absolute path ({target})")
        base = posixpath.dirname("/".join(parts)) if relative_to_entry else ""
        joined = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
        if joined == ".." or joined.startswith("../") or joined == ".":
            raise self.refuse(name, f"is a link pointing outside the recipe folder ({target})")
        self.links.append((parts, tuple(joined.split("/")), name))

    def resolve_links(self) -> None:
        # Links to links resolve over several passes; whatever is left points nowhere in the archive.
        pending = list(self.links)
        while pending:
            left = []
            for parts, target, name in pending:
                source = self.dest.joinpath(*target)
                if source.is_file():
                    self._copy_into(parts, lambda to: shutil.copyfile(source, to))
                elif source.is_dir():
                    self._copy_into(parts, lambda to: shutil.copytree(source, to))
                else:
                    left.append((parts, target, name))
            if len(left) == len(pending):
                parts, target, name = left[0]
                raise self.refuse(name, f"is a link to {'/'.join(target)}, which is not in the archive")
            pending = left

    def _copy_into(self, parts, copy) -> None:
        to = self.dest.joinpath(*parts)
        to.parent.mkdir(parents=True, exist_ok=True)
        if to.exists():
            raise self.refuse("/".join(parts), "is a link over a file of the same name")
        copy(to)
        self.bytes += sum(p.stat().st_size for p in ([to] if to.is_file() else to.rglob("*")) if p.is_file())
        if self.bytes > MAX_BYTES:
            raise Refused(f"{self.label} is refused: it unpacks to more than {MAX_BYTES // 2**20} MB. Nothing was installed.")


def _unzip(archive: Path, writer: _Writer) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise Refused(f"{writer.label} is refused: it holds more than {MAX_FILES} files. Nothing was installed.")
        # First every name and link is checked, so a refused archive writes nothing at all.
        for info in infos:
            writer.parts(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                target = zf.read(info).decode("utf-8", "replace")
                writer.link(info.filename, target, relative_to_entry=True)
        for info in infos:
            mode = info.external_attr >> 16
            if info.is_dir():
                writer.folder(info.filename)
            elif not stat.S_ISLNK(mode):
                with zf.open(info) as stream:
                    writer.file(info.filename, stream, bool(mode & 0o111))


def _untar(archive: Path, writer: _Writer) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = []
        # First every name and link is checked, so a refused archive writes nothing at all.
        for member in tf:
            members.append(member)
            if len(members) > MAX_FILES:
                raise Refused(f"{writer.label} is refused: it holds more than {MAX_FILES} files. Nothing was installed.")
            writer.parts(member.name)
            if member.issym():
                writer.link(member.name, member.linkname, relative_to_entry=True)
            elif member.islnk():
                # A hard link names another entry of the archive, from the archive's top.
                writer.link(member.name, member.linkname, relative_to_entry=False)
            elif not (member.isdir() or member.isfile()):
                raise writer.refuse(member.name, "is a device, a pipe or another special file")
        for member in members:
            if member.isdir():
                writer.folder(member.name)
            elif member.isfile():
                writer.file(member.name, tf.extractfile(member), bool(member.mode & 0o111))
