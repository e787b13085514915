"""Writing the user's files: atomically, and never without keeping the previous version.

A kill may come at any moment (tests/test_faults.py kills at each step): the backup is
written under a temporary name, synced, then renamed, so a backup is whole or absent;
the new content is written to a temporary file that starts with `TMP_MARK`, synced, then
renamed over the file, so the file is the old one or the new one, whole. A temporary
file a kill left behind is removed by `sweep_temporaries` (ops/apply.py calls it).
A failure (not a kill) ends in an `OvernightError` sentence, the file as it was and no temporary left.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from .errors import OvernightError
from .faults import point

TMP_MARK = ".overnight-tmp-"


def atomic_write(path: Path, data: bytes, backup_dir: Path | None) -> Path | None:
    """Replaces `path` with `data` in one rename; returns where the old version was kept."""
    path = Path(path)
    backup = _backup(path, backup_dir) if backup_dir is not None and path.exists() else None
    point("apply.backup")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_MARK}{os.getpid()}-{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)  # a read-only file stays read-only
        point("apply.written")
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OvernightError(f"Cannot write {path}: {_why(exc)}; nothing was written.") from None
        raise
    _sync_dir(path.parent)
    point("apply.replaced")
    return backup


def _backup(path: Path, backup_dir: Path) -> Path:
    """A copy of `path` in `backup_dir`, synced before it gets its name: whole or absent."""
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = backup_dir / f"{path.name}.{stamp}.{os.getpid()}.bak"
        n = 1
        while backup.exists():
            n += 1
            backup = backup_dir / f"{path.name}.{stamp}.{os.getpid()}-{n}.bak"
        partial = backup.with_name(f"{TMP_MARK}{os.getpid()}-{backup.name}")
        try:
            shutil.copy2(path, partial)
            # Opened for reading: fsync needs no write access, and the copy keeps the mode of a read-only file.
            with open(partial, "rb") as f:
                os.fsync(f.fileno())
            os.replace(partial, backup)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OvernightError(f"Cannot keep a backup of {path}: {_why(exc)}; nothing was written.") from None
    _sync_dir(backup_dir)
    return backup


def _why(exc: OSError) -> str:
    """The cause in words, with the path it concerns ("File exists" alone does not say a folder is a file)."""
    if isinstance(exc, FileExistsError) and exc.filename:
        return f"{exc.filename} is a file, not a folder"
    cause = exc.strerror or str(exc)
    cause = cause[:1].lower() + cause[1:]
    return f"{cause} ({exc.filename})" if exc.filename else cause


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep_temporaries(*folders: Path) -> list[Path]:
    """Removes what an interrupted write left in these folders (never another program's files)."""
    gone = []
    for folder in folders:
        try:
            names = [p for p in Path(folder).iterdir() if p.name.startswith(TMP_MARK) and not _writer_alive(p.name)]
        except OSError:
            continue
        for p in names:
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def _writer_alive(name: str) -> bool:
    """True when the process that is writing this temporary file still runs."""
    pid = name[len(TMP_MARK):].split("-", 1)[0]
    return pid.isdigit() and pid_alive(int(pid))


def pid_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie counts as gone)."""
    if not isinstance(pid, int) or pid <= 0:  # 0 and -1 would signal a whole group: no run's process is either
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # past the largest pid: no process has it
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
