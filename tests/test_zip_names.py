"""Zip entry names as unzip reads them. Info-ZIP on Linux, and many tools, write UTF-8 names without
the zip's UTF-8 flag; zipfile reads those as cp437 (`prompt-café.txt` as `prompt-caf├⌐.txt`), so a
recipe naming its file would not find it. A name that is valid UTF-8 is read as UTF-8, any other
stays cp437, and every check of an entry's name applies to the name as read."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.support.recipe_sources import recipe_texts
from tests.test_hostile_sources import refused


def raw_zip(path: Path, files: dict[bytes, str], links: dict[bytes, str] | None = None) -> Path:
    """A zip whose names are these bytes, stored without the UTF-8 flag: each entry is written under
    an ASCII stand-in of the same length (so zipfile sets no flag), then the stand-in's bytes are
    replaced, in the local and the central header alike."""
    stand_ins = {}
    with zipfile.ZipFile(path, "w") as zf:
        for raw, data in {**files, **(links or {})}.items():
            stand_in = bytes(b if 32 < b < 127 else ord("~") for b in raw)
            assert stand_in not in stand_ins, "two names share a stand-in"
            if stand_in != raw:
                stand_ins[stand_in] = raw
            info = zipfile.ZipInfo(stand_in.decode("ascii"))
            if raw in (links or {}):
                info.external_attr = 0o120777 << 16  # a symlink, as `zip --symlinks` writes it
            zf.writestr(info, data)
    data = path.read_bytes()
    for stand_in, raw in stand_ins.items():
        assert data.count(stand_in) == 2
        data = data.replace(stand_in, raw)
    path.write_bytes(data)
    return path


def recipe_with(surface: bytes) -> dict[bytes, str]:
    """The test recipe with its surface file stored under the name `surface`, which recipe.toml names in UTF-8."""
    texts = recipe_texts()
    name = surface.decode("utf-8", "replace")
    texts["recipe.toml"] = texts["recipe.toml"].replace('path = "note.txt"', f'path = "{name}"').replace("note.txt", name)
    note = texts.pop("note.txt")
    return {**{k.encode(): v for k, v in texts.items()}, surface: note}


def test_a_utf8_name_written_without_the_flag_installs_under_its_real_name(cli, workspace, overnight_home):
    archive = raw_zip(workspace / "cafe.zip", recipe_with("prompt-café.txt".encode()))
    assert "prompt-caf├⌐.txt" in zipfile.ZipFile(archive).namelist()  # what zipfile alone reads

    result = cli("recipes", "install", archive)

    assert result.exit_code == 0, result.output
    folder = overnight_home / "recipes" / "longer-note"
    assert (folder / "prompt-café.txt").read_text() == "hello\n"
    assert not any("├" in p.name for p in folder.iterdir())
    validated = cli("recipes", "validate", folder)
    assert validated.exit_code == 0 and "is a valid recipe 'longer-note'" in validated.output


def test_a_name_in_cp437_stays_as_cp437_reads_it(cli, workspace, overnight_home):
    # 0x82 is é in cp437 and no UTF-8 on its own: the name is the one DOS and Windows tools wrote.
    files = {b"recipe.toml": recipe_texts()["recipe.toml"], b"note.txt": "hello\n", b"caf\x82 \x8e.txt": "old\n"}

    result = cli("recipes", "install", raw_zip(workspace / "dos.zip", files))

    assert result.exit_code == 0, result.output
    assert (overnight_home / "recipes" / "longer-note" / "café Ä.txt").read_text() == "old\n"


@pytest.mark.parametrize("name, said", [
    ("../évasion.txt", "entry '../évasion.txt' would be written outside the recipe folder"),
    ("/étc/passwd", "entry '/étc/passwd' has an absolute path"),
    ("csi-\x9b2J.txt", "entry 'csi-\\x9b2J.txt' has a control character in its name"),  # cp437 reads it as csi-┬¢2J.txt
    ("nul-é\x00.txt", "entry 'nul-é\\x00.txt' has a control character in its name"),  # zipfile alone cuts it at the NUL
])
def test_the_checks_see_the_name_as_read(cli, workspace, overnight_home, name, said):
    files = {b"recipe.toml": recipe_texts()["recipe.toml"], b"note.txt": "hello\n", name.encode(): "x\n"}

    assert said in refused(cli, raw_zip(workspace / "bad.zip", files), overnight_home)


def test_a_link_named_in_utf8_without_the_flag_is_still_a_link_out(cli, workspace, overnight_home):
    files = {b"recipe.toml": recipe_texts()["recipe.toml"], b"note.txt": "hello\n"}
    archive = raw_zip(workspace / "link.zip", files, links={"clé".encode(): "../../secret"})

    said = refused(cli, archive, overnight_home)

    assert "entry 'clé' is a link pointing outside the recipe folder (../../secret)" in said
