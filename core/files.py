"""Writing the user's files: atomically, and never without keeping the previous version."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def atomic_write(path: Path, data: bytes, backup_dir: Path | None) -> Path | None:
    """Replaces `path` with `data` in one rename; returns where the old version was kept."""
    path = Path(path)
    backup = None
    if backup_dir is not None and path.exists():
        backup_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = backup_dir / f"{path.name}.{stamp}.{os.getpid()}.bak"
        n = 1
        while backup.exists():
            n += 1
            backup = backup_dir / f"{path.name}.{stamp}.{os.getpid()}-{n}.bak"
        shutil.copy2(path, backup)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup
