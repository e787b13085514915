"""Where a recipe can be installed from, and getting it into a staging folder without running any of it.

A source is a folder, a .zip/.tar.gz file, an https URL of one, a git URL
(`git+https://host/repo.git[@ref][#subdirectory=path]`, `git+file://...`), a
GitHub shorthand (`gh:owner/repo[/subfolder][@ref]`), or a name from an index.
Plain http is accepted only from this machine (127.0.0.1, localhost, ::1).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from overnight.core.errors import OvernightError

from . import unpack
from .library import IGNORED, NAME, RECIPE_FILE, folder_digest

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# A server that sends nothing for this long is given up on; so is a transfer past its deadline.
SILENCE_SECONDS = 60
DOWNLOAD_DEADLINE = 600
GIT_DEADLINE = 600
# A clone holds the history and the checkout: room for both at the archive limit.
GIT_MAX_BYTES = 2 * unpack.MAX_BYTES
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class Source:
    """A parsed source: what kind, and where."""

    text: str  # as the person wrote it
    kind: str  # folder, archive, url, git, index
    location: str  # a path, a URL, or an index name
    ref: str | None = None  # git: a branch, tag or commit
    subfolder: str | None = None  # git: where the recipe is inside the repository


def parse(text: str, base: Path | None = None) -> Source:
    """Reads a source; `base` resolves relative paths (an index file's folder)."""
    text = text.strip()
    if text.startswith("gh:"):
        return _github(text)
    if text.startswith("git+"):
        return _git(text)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        check_url(text, text)
        return Source(text, "url", text)
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_dir():
        return Source(text, "folder", str(path))
    if path.is_file():
        if not text.lower().endswith(ARCHIVE_SUFFIXES) and unpack.kind(path) is None:
            raise OvernightError(f"{text} is a file but not a .zip or .tar.gz archive: install a folder, an archive, a git URL or an index name.")
        return Source(text, "archive", str(path))
    if NAME.match(text) and not text.lower().endswith(ARCHIVE_SUFFIXES):
        return Source(text, "index", text)
    raise OvernightError(
        f"Unknown source {text!r}: it is not a folder, a .zip or .tar.gz file, an https or git URL, "
        f"gh:owner/repo, or a name in your indexes (see `overnight recipes index list`)."
    )


def check_url(url: str, label: str) -> None:
    """Only https travels the network; plain http is for servers on this machine."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOOPBACK:
        return
    if parts.scheme == "http":
        raise OvernightError(f"{label}: plain http is accepted only from this machine (127.0.0.1); use an https URL.")
    raise OvernightError(f"{label}: unsupported URL scheme {parts.scheme!r}; use https://, git+https:// or gh:owner/repo.")


def _check_ref(ref: str | None, text: str) -> str | None:
    if ref and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$", ref):
        raise OvernightError(f"{text!r}: {ref!r} is not a branch, tag or commit name.")
    return ref or None


def _github(text: str) -> Source:
    spec, _, ref = text[3:].partition("@")
    parts = [p for p in spec.split("/") if p]
    if len(parts) < 2 or not all(re.match(r"^[A-Za-z0-9._-]+$", p) for p in parts[:2]):
        raise OvernightError(f"{text!r} is not a GitHub source: write gh:owner/repo, gh:owner/repo/subfolder or gh:owner/repo@ref.")
    url = f"https://github.com/{parts[0]}/{parts[1]}.git"
    return Source(text, "git", url, _check_ref(ref, text), "/".join(parts[2:]) or None)


def _git(text: str) -> Source:
    url, _, fragment = text[4:].partition("#")
    subfolder = None
    if fragment:
        key, _, value = fragment.partition("=")
        if key != "subdirectory" or not value:
            raise OvernightError(f"{text!r}: after '#' write subdirectory=PATH (the recipe's folder in the repository).")
        subfolder = value
    parts = urlsplit(url)
    ref = None
    if "@" in parts.path:
        path, _, ref = parts.path.rpartition("@")
        url = parts._replace(path=path).geturl()
    if parts.scheme == "file":
        pass  # a repository on this machine
    elif parts.scheme in ("https", "http"):
        check_url(url, text)
    elif parts.scheme == "ssh":
        pass  # the person's own ssh setup decides who they reach
    else:
        raise OvernightError(f"{text!r}: unsupported git URL; use git+https://, git+ssh:// or git+file://.")
    return Source(text, "git", url, _check_ref(ref, text), subfolder)


# -- getting a source into a staging folder -----------------------------------


def fetch(source: Source, staging: Path, sha256: str | None = None) -> tuple[Path, dict]:
    """Puts the recipe of `source` under `staging`; returns its folder and facts for the manifest.

    `sha256` pins an archive's bytes, or for a folder or git source the recipe's digest
    (as `overnight recipes show` prints it); it is checked before anything is unpacked or kept.
    """
    if sha256 is not None and not HEX64.match(sha256):
        raise OvernightError(f"--sha256 {sha256!r} is not a sha256 digest (64 hexadecimal characters).")
    sha256 = sha256.lower() if sha256 else None
    if source.kind in ("archive", "url"):
        if source.kind == "url":
            archive = download(source.location, staging / "download")
        else:
            archive = Path(source.location)
        actual = _sha256(archive)
        if sha256 and actual != sha256:
            raise OvernightError(f"{source.text} has sha256 {actual}, not the expected {sha256}: refused, nothing was installed.")
        out = staging / "unpacked"
        out.mkdir()
        unpack.unpack(archive, out, source.text)
        # Copied as a folder source is: what an archive ships in `.overnight/` (a store, a manifest of
        # its own) or caches is never installed, and so never left out of the recipe's digest unseen.
        return copy_tree(_recipe_root(out, source.text), staging / "copy", source.text), {"sha256": actual}
    if source.kind == "folder":
        folder = Path(source.location)
        if not (folder / RECIPE_FILE).is_file():
            raise OvernightError(f"The folder {source.text} holds no {RECIPE_FILE}: nothing was installed.")
        out = copy_tree(folder, staging / "copy", source.text)
        _check_digest(out, sha256, source.text)
        return out, {}
    if source.kind == "git":
        clone = staging / "clone"
        commit = git_clone(source, clone)
        root = clone
        if source.subfolder:
            root = _inside(clone, source.subfolder, source.text)
        if not (root / RECIPE_FILE).is_file():
            where = f"its folder {source.subfolder!r}" if source.subfolder else "the top of the repository"
            raise OvernightError(f"{source.text} holds no {RECIPE_FILE} in {where}: nothing was installed.")
        out = copy_tree(root, staging / "copy", source.text)
        _check_digest(out, sha256, source.text)
        return out, {"commit": commit}
    raise OvernightError(f"Unknown source {source.text!r}.")


def _check_digest(folder: Path, sha256: str | None, label: str) -> None:
    if sha256:
        actual = folder_digest(folder)
        if actual != sha256:
            raise OvernightError(f"The recipe from {label} has digest {actual}, not the expected {sha256}: refused, nothing was installed.")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _recipe_root(folder: Path, label: str) -> Path:
    """The recipe's folder in an unpacked archive: its top, or its one top folder (as GitHub zips have)."""
    if (folder / RECIPE_FILE).is_file():
        return folder
    children = [c for c in folder.iterdir() if c.name not in IGNORED]
    if len(children) == 1 and children[0].is_dir() and (children[0] / RECIPE_FILE).is_file():
        return children[0]
    raise OvernightError(f"{label} holds no {RECIPE_FILE} (looked at its top and in its one top folder): nothing was installed.")


def _inside(root: Path, sub: str, label: str) -> Path:
    parts = [p for p in sub.replace("\\", "/").split("/") if p not in ("", ".")]
    if sub.startswith("/") or ".." in parts:
        raise OvernightError(f"{label}: the subfolder {sub!r} must be a relative path inside the repository.")
    path = root.joinpath(*parts)
    if not _resolved(path, Path(*parts), label).is_relative_to(root.resolve()):
        raise OvernightError(f"{label}: the subfolder {sub!r} leads outside the repository: refused, nothing was installed.")
    return path


def copy_tree(source: Path, dest: Path, label: str) -> Path:
    """Copies a recipe folder as plain files: a link to a file inside becomes a copy, a link to a
    folder inside is left out (its folder is copied anyway), and a link out refuses the whole source."""
    root = source.resolve()
    files, size = 0, 0
    dest.mkdir(parents=True)
    for top, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED)
        for name in sorted(names + [d for d in dirs if (Path(top) / d).is_symlink()]):
            path = Path(top) / name
            rel = path.relative_to(source)
            if name in IGNORED:
                continue
            real = _resolved(path, rel, label)
            if not real.is_relative_to(root):
                raise OvernightError(f"{label} is refused: {rel.as_posix()} is a link pointing outside the recipe folder. Nothing was installed.")
            if real.is_dir():
                continue  # a link to a folder inside: its files are reached through the real folder
            if not real.is_file():
                raise OvernightError(f"{label} is refused: {rel.as_posix()} is not a plain file. Nothing was installed.")
            files += 1
            size += real.stat().st_size
            if files > unpack.MAX_FILES or size > unpack.MAX_BYTES:
                raise OvernightError(f"{label} is refused: it is larger than {unpack.MAX_FILES} files or {unpack.MAX_BYTES // 2**20} MB. Nothing was installed.")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real, target)
            target.chmod(0o755 if real.stat().st_mode & 0o111 else 0o644)
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()]
    return dest


def _resolved(path: Path, rel: Path, label: str) -> Path:
    """Where a link leads; a loop of links (`a -> b`, `b -> a`) leads nowhere and refuses the source."""
    try:
        os.stat(path)  # follows the links as the system does: ELOOP for a loop, whatever pathlib makes of it
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OvernightError(f"{label} is refused: {rel.as_posix()} is a link in a loop (following it leads back "
                                 "to itself). Nothing was installed.") from None
    return path.resolve()


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() in LOOPBACK


def _redirects(origin: str):
    import urllib.request

    class CheckedRedirects(urllib.request.HTTPRedirectHandler):
        """Each redirect is checked before it is followed: https only, and never from elsewhere to this machine."""

        max_redirections = 5

        def redirect_request(self, req, fp, code, msg, headers, newurl):
            check_url(newurl, f"{origin} redirects to {newurl}")
            if is_loopback(newurl) and not is_loopback(req.full_url):
                raise OvernightError(f"{origin} redirects to {newurl}, on this machine: refused, nothing was installed.")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return CheckedRedirects()


def download(url: str, target: Path) -> Path:
    """Streams a URL to a file, stopping at the size limit, after SILENCE_SECONDS without a byte or
    at DOWNLOAD_DEADLINE; never runs what it fetched."""
    import time
    import urllib.error
    import urllib.request

    check_url(url, url)
    request = urllib.request.Request(url, headers={"User-Agent": "overnight"})
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    try:
        with urllib.request.build_opener(_redirects(url)).open(request, timeout=SILENCE_SECONDS) as response, \
                open(target, "wb") as out:
            check_url(response.geturl(), url)
            got = 0
            while block := response.read1(1 << 16):
                got += len(block)
                if got > unpack.MAX_BYTES:
                    raise OvernightError(f"{url} is larger than {unpack.MAX_BYTES // 2**20} MB: refused, nothing was installed.")
                if time.monotonic() > deadline:
                    raise OvernightError(f"Downloading {url} took longer than {DOWNLOAD_DEADLINE} s: gave up, nothing was installed.")
                out.write(block)
    except urllib.error.HTTPError as exc:
        raise OvernightError(f"Cannot download {url}: the server answered {exc.code} {exc.reason}.") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise OvernightError(f"{url} sent nothing for {SILENCE_SECONDS} s: gave up, nothing was installed.") from None
        raise OvernightError(f"Cannot download {url}: {exc.reason}.") from None
    except TimeoutError:
        raise OvernightError(f"{url} sent nothing for {SILENCE_SECONDS} s: gave up, nothing was installed.") from None
    except (OSError, ValueError) as exc:
        raise OvernightError(f"Cannot download {url}: {exc}.") from None
    return target


def read_url(url: str) -> bytes:
    """A small text file (an index) from a URL."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return download(url, Path(tmp) / "file").read_bytes()


def git_clone(source: Source, dest: Path) -> str:
    """Clones without hooks, submodules, prompts or your git settings; returns the commit checked out.

    Nothing from the repository runs: hooks point nowhere, no ext:: transport, and
    neither your global nor the system's git config is read, so no filter or
    credential helper they name can be triggered by the repository's attributes.
    Every git call ends after SILENCE_SECONDS with no progress, at GIT_DEADLINE,
    or past GIT_MAX_BYTES on disk, and takes every process it started with it.
    """
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true",
           "GCM_INTERACTIVE": "never", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_LFS_SKIP_SMUDGE": "1"}
    env.setdefault("GIT_SSH_COMMAND", f"ssh -o BatchMode=yes -o ConnectTimeout={SILENCE_SECONDS}")
    safe = ["-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never", "-c", "advice.detachedHead=false",
            "-c", "core.fsmonitor=false", "-c", "submodule.recurse=false", "-c", "credential.helper=",
            "-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={SILENCE_SECONDS}"]

    def git(*args, cwd=None) -> subprocess.CompletedProcess:
        return _watched(["git", *safe, *args], cwd or dest.parent, env, dest, source.text)

    args = ["clone", "--quiet", "--progress", "--no-tags", "--depth", "1"]
    if source.ref:
        args += ["--branch", source.ref]
    done = git(*args, "--", source.location, str(dest))
    if done.returncode != 0 and source.ref:
        # A commit rather than a branch or tag: clone everything, then check it out.
        shutil.rmtree(dest, ignore_errors=True)
        done = git("clone", "--quiet", "--progress", "--no-checkout", "--", source.location, str(dest))
        if done.returncode == 0:
            done = git("checkout", "--quiet", "--detach", source.ref, cwd=dest)
            if done.returncode != 0:
                raise OvernightError(f"{source.text}: the repository has no branch, tag or commit {source.ref!r}. Nothing was installed.")
    if done.returncode != 0:
        reason = ([line for line in done.stderr.strip().splitlines() if not line.startswith(("Cloning", "remote:", "Receiving", "Resolving"))] or ["git failed"])[-1]
        raise OvernightError(f"Cannot clone {source.text}: {reason.removeprefix('fatal: ')}. Nothing was installed.")
    if _size(dest) > GIT_MAX_BYTES:  # a clone quick enough to finish between two looks
        raise OvernightError(f"{source.text} is larger than {GIT_MAX_BYTES // 2**20} MB: gave up, nothing was installed.")
    head = git("rev-parse", "HEAD", cwd=dest)
    return head.stdout.strip()


def _watched(args: list[str], cwd: Path, env: dict, dest: Path, label: str) -> subprocess.CompletedProcess:
    """One git call in a session of its own, watched: progress on stderr or on disk, a deadline, a size."""
    import signal
    import tempfile
    import time

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
        except FileNotFoundError:
            raise OvernightError("Installing from a git URL needs the `git` program, which was not found on PATH.") from None
        start = last = time.monotonic()
        seen = (0, 0)
        try:
            while proc.poll() is None:
                time.sleep(0.2)
                now = time.monotonic()
                size = _size(dest)
                if size > GIT_MAX_BYTES:
                    raise OvernightError(f"{label} is larger than {GIT_MAX_BYTES // 2**20} MB: gave up, nothing was installed.")
                progress = (os.fstat(err.fileno()).st_size, size)
                if progress != seen:
                    seen, last = progress, now
                elif now - last > SILENCE_SECONDS:
                    raise OvernightError(f"{label} sent nothing for {SILENCE_SECONDS} s: gave up, nothing was installed.")
                if now - start > GIT_DEADLINE:
                    raise OvernightError(f"Cloning {label} took longer than {GIT_DEADLINE} s: gave up, nothing was installed.")
        finally:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # git and every helper it started (git-remote-https, ssh)
                except ProcessLookupError:
                    pass
            proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, proc.returncode, out.read().decode("utf-8", "replace"),
                                           err.read().decode("utf-8", "replace"))


def _size(folder: Path) -> int:
    total = 0
    for top, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                continue
    return total
