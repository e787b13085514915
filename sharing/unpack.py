"""Unpacking a recipe archive with no way out of the destination folder.

Nothing is extracted by tarfile or zipfile themselves: every entry's name is
checked (no absolute path, no `..`, no control character), only plain files
and folders are written, and a link is never created on disk. A link whose
target stays inside the archive becomes a copy of that target, counted as one
more file and its bytes; a link to a folder, or one that points outside,
refuses the whole archive (a folder link copied is how a few hundred bytes
unpack into millions of files). A zip entry's name that is UTF-8 without the
flag that says so is read as UTF-8, as unzip reads it (`_zip_name`).
Sizes are counted as headers are read and again as bytes are written, so
neither a compression bomb nor a header that lies gets past the limit. A tar is
read through `_Capped`, because tarfile reads a long name or a pax header whole
into memory before any member reaches our checks: a 1.5 MB .tar.gz can declare
a 1.5 GB name.
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
# Longest name or link target, and longest part of one: past these a file system refuses anyway.
MAX_NAME = 1024
MAX_PART = 255
# A tar's long name or pax header is read whole, so each is kept to what a name and a few attributes
# need; all headers together, to what 5000 files with long names and attributes need.
MAX_HEADER = 64 * 2**10
MAX_HEADERS = 32 * 2**20


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
        writer.resolve_links()
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OvernightError):
            raise
        raise Refused(f"{label} is a corrupt or unreadable archive ({exc}): nothing was installed.") from None


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
        if re.search(r"[\x00-\x1f\x7f-\x9f]", name):  # a NUL ends a name early; an ESC or CSI drives a terminal
            raise self.refuse(name, "has a control character in its name")
        if len(name) > MAX_NAME or any(len(p.encode("utf-8", "surrogateescape")) > MAX_PART for p in name.split("/")):
            raise self.refuse(name[:80] + "...", f"has a name longer than {MAX_NAME} characters or a part longer than {MAX_PART} bytes")
        clean = name.replace("\\", "/")
        if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
            raise self.refuse(name, "has an absolute path")
        parts = tuple(p for p in clean.split("/") if p not in ("", "."))
        if ".." in parts:
            raise self.refuse(name, "would be written outside the recipe folder ('..' in its path)")
        return parts

    def count(self, name: str, size: int = 0) -> None:
        self.files += 1
        self.bytes += size
        if self.files > MAX_FILES:
            raise Refused(f"{self.label} is refused: it holds more than {MAX_FILES} files. Nothing was installed.")
        if self.bytes > MAX_BYTES:
            raise self.too_big()

    def too_big(self) -> Refused:
        return Refused(f"{self.label} is refused: it unpacks to more than {MAX_BYTES // 2**20} MB. Nothing was installed.")

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
                    raise self.too_big()
                out.write(block)
        target.chmod(0o755 if executable else 0o644)

    def link(self, name: str, target: str, relative_to_entry: bool) -> None:
        """Remembers a link to copy once every file is out; refuses one that leads outside."""
        parts = self.parts(name)
        self.count(name)
        if len(target) > MAX_NAME or "\0" in target or any(len(p.encode("utf-8", "surrogateescape")) > MAX_PART for p in target.split("/")):
            raise self.refuse(name, f"is a link whose target is longer than {MAX_NAME} characters or has a NUL")
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
                if source.is_dir():
                    raise self.refuse(name, f"is a link to the folder {'/'.join(target)}; a recipe archive may link files only")
                if source.is_file():
                    self._copy_into(parts, source, name)
                else:
                    left.append((parts, target, name))
            if len(left) == len(pending):
                parts, target, name = left[0]
                raise self.refuse(name, f"is a link to {'/'.join(target)}, which is not in the archive")
            pending = left

    def _copy_into(self, parts, source: Path, name: str) -> None:
        """One copy of one file for one link; its bytes count before they are written (the link counted as a file)."""
        to = self.dest.joinpath(*parts)
        if to.exists() or to.is_symlink():
            raise self.refuse(name, "is a link over a file of the same name")
        size = source.stat().st_size
        if self.bytes + size > MAX_BYTES:
            raise self.too_big()
        self.bytes += size
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, to)


def _unzip(archive: Path, writer: _Writer) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise Refused(f"{writer.label} is refused: it holds more than {MAX_FILES} files. Nothing was installed.")
        if sum(max(info.file_size, 0) for info in infos) > MAX_BYTES:
            raise writer.too_big()
        # First every name and link is checked, so a refused archive writes nothing at all.
        for info in infos:
            info.filename = _zip_name(info)
            writer.parts(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                writer.link(info.filename, _zip_link_target(zf, info, writer), relative_to_entry=True)
        for info in infos:
            mode = info.external_attr >> 16
            if info.is_dir():
                writer.folder(info.filename)
            elif not stat.S_ISLNK(mode):
                with zf.open(info) as stream:
                    writer.file(info.filename, stream, bool(mode & 0o111))


def _zip_name(info: zipfile.ZipInfo) -> str:
    """An entry's name as unzip reads it: zipfile reads a name without the UTF-8 flag as cp437, but
    Info-ZIP on Linux and many tools write UTF-8 there without the flag, so bytes that are valid UTF-8
    are read as UTF-8. From the name as stored, before zipfile cut it at a NUL, so `parts` sees that."""
    if info.flag_bits & 0x800:
        return info.orig_filename
    try:
        return info.orig_filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.orig_filename


def _zip_link_target(zf, info, writer: _Writer) -> str:
    """A link's target, read no further than a name can be long (its stored size may lie)."""
    if info.file_size > MAX_NAME:
        raise writer.refuse(info.filename, f"is a link whose target is longer than {MAX_NAME} characters")
    with zf.open(info) as stream:
        data = stream.read(MAX_NAME + 1)
    if len(data) > MAX_NAME:
        raise writer.refuse(info.filename, f"is a link whose target is longer than {MAX_NAME} characters")
    return data.decode("utf-8", "replace")


def _untar(archive: Path, writer: _Writer) -> None:
    try:
        with _Capped(archive, writer) as stream, tarfile.open(fileobj=stream, mode="r:") as tf:
            members = _tar_members(tf, writer)
            stream.headers_read()
            for member in members:
                if member.isdir():
                    writer.folder(member.name)
                elif member.isfile():
                    writer.file(member.name, tf.extractfile(member), bool(member.mode & 0o111))
    except RecursionError:  # tarfile follows each long-name or pax header into the next one by recursion
        raise Refused(f"{writer.label} is refused: it chains hundreds of tar headers before one entry. "
                      "Nothing was installed.") from None


def _tar_members(tf: tarfile.TarFile, writer: _Writer) -> list[tarfile.TarInfo]:
    """Every entry, checked before anything is written, so a refused archive writes nothing at all.

    Sizes are added up as headers arrive: a bomb stops at the first header past the limit, not at its end."""
    members = []
    declared = 0
    for member in tf:
        members.append(member)
        declared += max(member.size, 0)
        if len(members) > MAX_FILES:
            raise Refused(f"{writer.label} is refused: it holds more than {MAX_FILES} files. Nothing was installed.")
        if declared > MAX_BYTES:
            raise writer.too_big()
        writer.parts(member.name)
        if member.issparse():
            raise writer.refuse(member.name, "is a sparse file")
        if member.issym():
            writer.link(member.name, member.linkname, relative_to_entry=True)
        elif member.islnk():
            # A hard link names another entry of the archive, from the archive's top.
            writer.link(member.name, member.linkname, relative_to_entry=False)
        elif not (member.isdir() or member.isfile()):
            raise writer.refuse(member.name, "is a device, a pipe or another special file")
    return members


class _Capped:
    """The tar stream, decompressed, as tarfile reads it: no header body past MAX_HEADER and no
    more than MAX_HEADERS of headers are read, and nothing past the size limit is decompressed.

    While the headers are read tarfile asks for 512-byte blocks, one byte after skipping an
    entry's data, and a long name or pax header whole in one read: that read is refused by its size.
    """

    def __init__(self, archive: Path, writer: _Writer):
        self.writer = writer
        self.raw, self.errors = _decompressed(archive)
        self.scanning = True
        self.scanned = 0
        # The data, and the headers and padding around it.
        self.limit = MAX_BYTES + MAX_HEADERS + MAX_FILES * 512

    def __enter__(self) -> "_Capped":
        return self

    def __exit__(self, *exc) -> None:
        self.raw.close()

    def headers_read(self) -> None:
        """From here on tarfile reads entries' data, which the writer counts as it writes."""
        self.scanning = False

    def read(self, size: int = -1) -> bytes:
        at = self.raw.tell()
        if size is None or size < 0:
            size = self.limit + 1 - at  # tarfile always says how much; were it not to, no further than the limit
        if self.scanning:
            if size > MAX_HEADER:
                raise Refused(f"{self.writer.label} is refused: the tar header at byte {at - 512} declares a long name "
                              f"or pax header of {_amount(size)} (at most {_amount(MAX_HEADER)}). Nothing was installed.")
            self.scanned += size
            if self.scanned > MAX_HEADERS:
                raise Refused(f"{self.writer.label} is refused: its tar headers hold more than {_amount(MAX_HEADERS)}. "
                              "Nothing was installed.")
        try:
            data = self.raw.read(min(size, self.limit + 1 - at))
        except self.errors as exc:  # as OSError, which `unpack` reports as a corrupt archive
            raise OSError(str(exc)) from None
        if at + len(data) > self.limit:
            raise self.writer.too_big()
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0 and offset > self.limit:
            raise self.writer.too_big()  # skipping data decompresses it all the same
        try:
            return self.raw.seek(offset, whence)
        except self.errors as exc:
            raise OSError(str(exc)) from None

    def tell(self) -> int:
        return self.raw.tell()


def _decompressed(archive: Path):
    """The archive's tar stream, chosen by its first bytes as `kind` reads them, and the errors
    its decoder raises for bad data that are not an OSError already."""
    import zlib

    with open(archive, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x1f\x8b"):
        import gzip

        return gzip.open(archive, "rb"), (zlib.error,)
    if head.startswith(b"BZh"):
        import bz2

        return bz2.open(archive, "rb"), ()
    if head.startswith(b"\xfd7zXZ\x00"):
        import lzma

        return lzma.open(archive, "rb"), (lzma.LZMAError,)
    return open(archive, "rb"), ()


def _amount(size: int) -> str:
    return f"{size // 2**20} MB" if size >= 2**20 else f"{size // 2**10} KB"
