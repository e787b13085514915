"""Work folders: a copy of the recipe folder for each measurement, made cheaply and safely.

The recipe folder is listed once per run (were it to change, the fingerprint that
core/measure.py checks after each measurement stops the run). Each file is then cloned
into the work folder: a reflink (copy-on-write) where the file system has them, else a
copy made inside the kernel (copy_file_range). Never a hard link: a metric that writes
a file it was given would then write the person's own file. Modes and times are kept;
extended attributes are not. Left out, as `.overnight` is: the run's store, when it is kept
in the recipe folder (`--db`), as it changes while the run writes it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# Left out of every work folder: overnight's own, version control, caches, environments.
IGNORE = shutil.ignore_patterns(".overnight", ".git", "__pycache__", "*.pyc", ".venv", "node_modules")
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


@dataclass(frozen=True)
class Entry:
    rel: str
    kind: str  # "dir", "file" or "link"
    mode: int
    times: tuple[int, int] = (0, 0)  # atime and mtime, ns
    target: str = ""  # a link's
    size: int = 0  # a file's


class Template:
    """The recipe folder's entries, listed once, and the way to copy them into a work folder."""

    def __init__(self, root: Path, skip: frozenset[str] = frozenset()):
        """`skip`: paths relative to `root` left out besides IGNORE (the run's store, kept there)."""
        self.root = Path(root)
        self.mode = os.stat(self.root).st_mode & 0o7777
        self.entries = list(_listing(self.root, "", skip))
        self.reflinks = True  # until the file system says it has none
        self.umask = _umask()

    def copy(self, folder: Path) -> None:
        """Makes `folder` (which must not exist) a copy of the recipe folder."""
        os.mkdir(folder, 0o700)
        dirs = []
        for e in self.entries:
            dst = os.path.join(folder, e.rel)
            if e.kind == "dir":
                os.mkdir(dst)
                dirs.append((dst, e))
            elif e.kind == "link":
                os.symlink(e.target, dst)
            else:
                self._file(os.path.join(self.root, e.rel), dst, e)
        for dst, e in reversed(dirs):  # last, so a read-only folder could still be filled
            os.chmod(dst, e.mode)
            os.utime(dst, ns=e.times)
        os.chmod(folder, self.mode)

    def _file(self, src: str, dst: str, e: Entry) -> None:
        fin = os.open(src, os.O_RDONLY)
        try:
            fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, e.mode & 0o777)
            try:
                if e.size and not self._reflink(fin, fout):
                    _copy(fin, fout, e.size)
                if e.mode & self.umask:  # bits the umask took away at creation, or setuid and the like
                    os.fchmod(fout, e.mode)
                os.utime(fout, ns=e.times)
            finally:
                os.close(fout)
        finally:
            os.close(fin)

    def _reflink(self, fin: int, fout: int) -> bool:
        if not self.reflinks:
            return False
        try:
            fcntl.ioctl(fout, FICLONE, fin)
            return True
        except OSError:
            self.reflinks = False  # one file system for the whole folder, as good as always
            return False


def write(path: Path, data: bytes) -> None:
    """Writes a file of a work folder, over the copy there, in place: emptied first (as opening it
    to write anew does), ext4 would push it to disk as it is closed, which costs more than the rest
    of the experiment's writes.

    A link there (the recipe folder's file was a link, copied as one) is replaced by the file, never
    written through: it may point at the person's own file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        os.unlink(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _copy(fin: int, fout: int, size: int) -> None:
    """Copies `fin` into `fout`, in the kernel where it can (one call for most files)."""
    try:
        while size > 0 and (done := os.copy_file_range(fin, fout, size)):
            size -= done
        return
    except OSError:  # an old kernel or a file system that cannot: by hand, from the start
        os.lseek(fin, 0, os.SEEK_SET)
        os.lseek(fout, 0, os.SEEK_SET)
        os.ftruncate(fout, 0)
    while chunk := os.read(fin, 1 << 20):
        os.write(fout, chunk)


def _umask() -> int:
    """This process's umask, read without setting it (which would race with other threads);
    where it cannot be read, every mode is set after creation."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 0o7777


def _listing(root: Path, prefix: str, skip: frozenset[str]):
    """Entries under root/prefix, sorted, parents before their contents; links are not followed."""
    here = os.path.join(root, prefix)
    with os.scandir(here) as found:
        items = sorted(found, key=lambda d: d.name)
    ignored = IGNORE(here, [d.name for d in items])
    for d in items:
        rel = os.path.join(prefix, d.name)
        if d.name in ignored or rel in skip:
            continue
        st = d.stat(follow_symlinks=False)
        if d.is_symlink():
            yield Entry(rel, "link", 0, target=os.readlink(d.path))
        elif d.is_dir(follow_symlinks=False):
            yield Entry(rel, "dir", st.st_mode & 0o7777, (st.st_atime_ns, st.st_mtime_ns))
            yield from _listing(root, rel, skip)
        elif d.is_file(follow_symlinks=False):
            yield Entry(rel, "file", st.st_mode & 0o7777, (st.st_atime_ns, st.st_mtime_ns), size=st.st_size)
