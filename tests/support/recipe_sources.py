"""Places a recipe can come from, made for tests: folders, archives, a git repository, an HTTP server."""

from __future__ import annotations

import functools
import http.server
import io
import subprocess
import tarfile
import threading
import zipfile
from pathlib import Path

from tests.conftest import write

# A small recipe that runs a command: the metric counts the bytes of the note.
RECIPE = {
    "recipe.toml": """
        [recipe]
        name = "longer-note"
        summary = "Make the note longer"

        [surface]
        kind = "text"
        path = "note.txt"

        [metric]
        kind = "command"
        run = "wc -c < note.txt"
        goal = "maximize"

        [agent]
        kind = "scripted"
        file = "proposals.jsonl"

        [budget]
        experiments = 2
        per_experiment_seconds = 20
    """,
    "note.txt": "hello\n",
    "proposals.jsonl": '{"view": "hello there, a longer note\\n", "rationale": "say more"}\n',
    "README.md": "A note that grows.\n",
}


def recipe_folder(folder: Path, **overrides: str) -> Path:
    return write(folder, {**RECIPE, **overrides})


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def make_zip(path: Path, files: dict[str, bytes | str], top: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(top + name, data)
    return path


def make_tar(path: Path, files: dict[str, bytes | str], top: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(top + name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


def add_tar_link(path: Path, name: str, target: str, hard: bool = False, files: dict | None = None) -> Path:
    """A .tar.gz holding `files` and one link entry."""
    with tarfile.open(path, "w:gz") as tf:
        for fname, data in (files or {}).items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(name)
        link.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        link.linkname = target
        tf.addfile(link)
    return path


def zip_with_symlink(path: Path, files: dict, name: str, target: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for fname, data in files.items():
            zf.writestr(fname, data)
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 << 16)  # a symlink, as `zip --symlinks` writes it
        zf.writestr(info, target)
    return path


def recipe_texts() -> dict[str, str]:
    import textwrap

    return {k: textwrap.dedent(v).lstrip("\n") for k, v in RECIPE.items()}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=main", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


def git_repo(folder: Path, files: dict[str, str], subfolder: str = "") -> Path:
    """A real repository with one commit holding `files` (under `subfolder` if given)."""
    folder.mkdir(parents=True)
    git(folder, "init", "--quiet")
    write(folder / subfolder if subfolder else folder, files)
    git(folder, "add", "-A")
    git(folder, "commit", "--quiet", "-m", "A recipe")
    return folder


class Server:
    """A static HTTP server on 127.0.0.1 serving one folder, in a thread."""

    def __init__(self, folder: Path):
        handler = functools.partial(_Quiet, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass
