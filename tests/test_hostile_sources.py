"""Sources built to hurt: tar headers that declare a huge body, links in a loop, a host that looks
like another. Each ends in one sentence naming what is wrong, and nothing is installed."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import write
from tests.support.recipe_sources import git, git_repo, recipe_folder, recipe_texts
from tests.test_trust import judged

HUGE = 1500 * 2**20  # what the outsider's archive declared: 1.5 GB of name in a 1.5 MB file


def nothing_installed(home: Path) -> None:
    root, staging = home / "recipes", home / ".staging"
    assert not root.exists() or list(root.iterdir()) == []
    assert not staging.exists() or list(staging.iterdir()) == []


def recipe_entries() -> bytes:
    """The tar entries of a valid recipe, without the end-of-archive blocks."""
    out = b""
    for name, text in recipe_texts().items():
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out += info.tobuf(format=tarfile.GNU_FORMAT) + data + bytes(-len(data) % 512)
    return out


def special_header(kind: bytes, declared: int) -> bytes:
    """A bare header of type `kind` ('L', 'K', 'x', 'g') whose body claims `declared` bytes."""
    info = tarfile.TarInfo("././@LongLink" if kind in b"LK" else "././@PaxHeader")
    info.type = kind
    info.size = declared
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def tar_gz(path: Path, *pieces: bytes, body: int = 0) -> Path:
    """A .tar.gz of `pieces`, with `body` bytes of "a" after the first (what a header declared)."""
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(pieces[0])
        for _ in range(body // 2**20):
            out.write(b"a" * 2**20)
        out.write(b"a" * (body % 2**20))
        for piece in pieces[1:]:
            out.write(piece)
        out.write(bytes(1024))
    return path


def refused(cli, archive: Path, home: Path) -> str:
    result = cli("recipes", "install", archive)
    assert result.exit_code != 0
    assert "Traceback" not in result.output and result.output.startswith("Error: "), result.output
    nothing_installed(home)
    return result.output


# -- 1. tar headers whose body would be read whole into memory ------------------------------


@pytest.mark.parametrize("kind", [b"L", b"K", b"x", b"g"])
def test_a_header_declaring_a_huge_body_is_refused_before_the_body_is_read(cli, workspace, overnight_home, kind):
    # Only 4 MB of the declared 1500 follow: reading the body at all would end as a corrupt archive.
    archive = tar_gz(workspace / "bomb.tar.gz", special_header(kind, HUGE), body=4 * 2**20)

    said = refused(cli, archive, overnight_home)

    assert ("bomb.tar.gz is refused: the tar header at byte 0 declares a long name or pax header of 1500 MB "
            "(at most 64 KB). Nothing was installed.") in said


def test_a_long_name_is_refused_by_its_declared_size_not_after_reading_it(cli, workspace, overnight_home):
    """Before the fix, this 8 MB name was read whole and refused only then, as longer than 1024 characters."""
    declared = 8 * 2**20
    archive = tar_gz(workspace / "longname.tar.gz", special_header(b"L", declared), tarfile.TarInfo("x").tobuf(),
                     recipe_entries(), body=declared)

    said = refused(cli, archive, overnight_home)

    assert "the tar header at byte 0 declares a long name or pax header of 8 MB (at most 64 KB)" in said
    assert "longer than 1024 characters" not in said


def test_a_huge_pax_header_after_good_entries_names_its_place(cli, workspace, overnight_home):
    entries = recipe_entries()
    archive = tar_gz(workspace / "late.tar.gz", entries + special_header(b"x", HUGE), body=2**20)

    said = refused(cli, archive, overnight_home)

    assert f"the tar header at byte {len(entries)} declares a long name or pax header of 1500 MB" in said


def test_the_outsiders_archive_is_refused_in_a_fresh_process(workspace, overnight_home):
    """The repro as it was run: the real command, out of process. Its peak memory is printed, not asserted."""
    import resource

    archive = tar_gz(workspace / "longname-bomb.tar.gz", special_header(b"L", HUGE), body=4 * 2**20)

    done = subprocess.run([sys.executable, "-m", "overnight.cli.main", "recipes", "install", archive],
                          cwd=workspace, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "declares a long name or pax header of 1500 MB (at most 64 KB)" in done.stdout + done.stderr
    print(f"peak memory of the children: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024} MB")
    nothing_installed(overnight_home)


def test_small_headers_that_add_up_past_the_limit_are_refused(cli, workspace, overnight_home, monkeypatch):
    from overnight.sharing import unpack

    monkeypatch.setattr(unpack, "MAX_HEADERS", 2**20)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(40):  # 40 entries, each with 60 KB of pax comment: 2.4 MB of headers
            info = tarfile.TarInfo(f"data/{i}.txt")
            info.pax_headers = {"comment": "c" * 60_000}
            tf.addfile(info, io.BytesIO(b""))
    archive = workspace / "headers.tar.gz"
    archive.write_bytes(gzip.compress(raw.getvalue()))

    said = refused(cli, archive, overnight_home)

    assert "headers.tar.gz is refused: its tar headers hold more than 1 MB." in said


def test_headers_chained_without_end_are_refused_in_one_sentence(cli, workspace, overnight_home):
    # tarfile follows a pax header into the next by recursion: thousands of them in a row exhaust it.
    archive = tar_gz(workspace / "chain.tar.gz", special_header(b"x", 0) * 5000 + recipe_entries())

    said = refused(cli, archive, overnight_home)

    assert "chain.tar.gz is refused: it chains hundreds of tar headers before one entry." in said


def test_a_tar_unpacks_from_every_compression_it_is_recognised_by(cli, workspace, overnight_home):
    """The tar stream is now opened by its first bytes, not by tarfile's guessing: each kind still installs."""
    plain = recipe_entries() + bytes(1024)
    for name, data in [("plain.tar", plain), ("gz.tar.gz", gzip.compress(plain)),
                       ("bz.tar.bz2", bz2.compress(plain)), ("xz.tar.xz", lzma.compress(plain))]:
        (workspace / name).write_bytes(data)

        result = cli("recipes", "install", workspace / name, "--force")

        assert result.exit_code == 0, (name, result.output)
        assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "hello\n"


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_a_tar_whose_compressed_data_is_damaged_is_refused_as_corrupt(cli, workspace, overnight_home, compress):
    filler = tarfile.TarInfo("data.bin")
    filler.size = 256 * 400
    data = bytearray(compress(recipe_entries() + filler.tobuf() + bytes(range(256)) * 400 + bytes(1024)))
    data[10:26] = b"\xff" * 16  # just past gzip's header, in bz2's first block and xz's stream flags
    (workspace / "damaged.tar.gz").write_bytes(bytes(data))

    said = refused(cli, workspace / "damaged.tar.gz", overnight_home)

    assert "damaged.tar.gz is a corrupt or unreadable archive" in said


# -- 2. links in a loop ------------------------------------------------------------------------


def test_a_folder_with_links_in_a_loop_is_refused_naming_the_link(cli, workspace, overnight_home):
    folder = recipe_folder(workspace / "floop")
    (folder / "loop1").symlink_to("loop2")
    (folder / "loop2").symlink_to("loop1")

    said = refused(cli, folder, overnight_home)

    assert "floop is refused: loop1 is a link in a loop (following it leads back to itself)." in said


def test_a_git_repository_with_links_in_a_loop_is_refused_naming_the_link(cli, workspace, overnight_home):
    repo = git_repo(workspace / "repo", recipe_texts(), subfolder="recipe")
    (repo / "recipe" / "sub").mkdir()
    (repo / "recipe" / "sub" / "a").symlink_to("b")
    (repo / "recipe" / "sub" / "b").symlink_to("a")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "Links in a loop")

    said = refused(cli, f"git+file://{repo}#subdirectory=recipe", overnight_home)

    assert "is refused: sub/a is a link in a loop (following it leads back to itself)." in said


def test_a_git_subfolder_that_is_a_link_in_a_loop_is_refused(cli, workspace, overnight_home):
    repo = git_repo(workspace / "repo", recipe_texts())
    (repo / "here").symlink_to("there")
    (repo / "there").symlink_to("here")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "A subfolder in a loop")

    said = refused(cli, f"git+file://{repo}#subdirectory=here", overnight_home)

    assert "is refused: here is a link in a loop (following it leads back to itself)." in said


# -- 3. a host that looks like another ---------------------------------------------------------
# `judged` (tests/test_trust.py) writes api_base as given: TOML escapes reach the recipe as such.


def test_a_look_alike_host_is_shown_as_the_name_looked_up(cli, workspace, overnight_home):
    """A Cyrillic a makes `api.openаi.com`; httpx asks the resolver for api.xn--openi-7ve.com, and so does the line."""
    folder = judged(workspace / "lookalike", "https://api.open\\u0430i.com/v1")

    shown = cli("recipes", "show", folder)

    assert shown.exit_code == 0, shown.output
    assert ("[metric] judge: sends OPENAI_API_KEY and your prompt to api.xn--openi-7ve.com (the address "
            "https://api.open\u0430i.com/v1 writes its host in non-ASCII letters; this is the name actually "
            "looked up) (model openai/gpt-4o-mini)") in shown.output

    assert cli("recipes", "install", folder).exit_code == 0
    row = [r for r in json.loads(cli("recipes", "list", "--json").output) if r["name"] == "lookalike"][0]
    assert row["sends_to"] == ["api.xn--openi-7ve.com (OPENAI_API_KEY)"]


def test_a_non_ascii_host_that_is_no_valid_name_is_shown_escaped(cli, workspace, overnight_home):
    folder = judged(workspace / "emoji", "https://\\U0001F600.example/v1")

    shown = cli("recipes", "show", folder)

    assert shown.exit_code == 0, shown.output
    assert ("sends OPENAI_API_KEY and your prompt to \\U0001f600.example (the address https://\U0001F600.example/v1 "
            "writes its host in non-ASCII letters; no such name can be looked up)") in shown.output


def test_an_ascii_host_is_shown_as_before(cli, workspace, overnight_home):
    folder = judged(workspace / "plain", "https://api.openai.com/v1")

    shown = cli("recipes", "show", folder)

    assert ("[metric] judge: sends OPENAI_API_KEY and your prompt to https://api.openai.com/v1 "
            "(model openai/gpt-4o-mini)") in shown.output
    assert "non-ASCII" not in shown.output
