"""Installing recipes from every kind of source, safely; and every way an install can go wrong."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from tests.support.recipe_sources import (
    Server, add_tar_link, files_of, git, git_repo, make_tar, make_zip, recipe_folder, recipe_texts, zip_with_symlink,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def installed(home: Path) -> list[str]:
    root = home / "recipes"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def nothing_left(home: Path) -> None:
    """Nothing installed, and no staging folder left behind."""
    assert installed(home) == []
    staging = home / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def manifest(home: Path, name: str) -> dict:
    return json.loads((home / "recipes" / name / ".overnight" / "manifest.json").read_text())


# -- every kind of source -----------------------------------------------------------


def test_install_from_a_folder_keeps_a_manifest_and_leaves_the_folder_alone(cli, workspace, overnight_home):
    source = recipe_folder(workspace / "src")
    before = files_of(source)

    result = cli("recipes", "install", source)

    assert result.exit_code == 0, result.output
    assert "Installed 'longer-note'" in result.output
    assert "wc -c < note.txt" in result.output  # says what it runs, right away
    folder = overnight_home / "recipes" / "longer-note"
    assert (folder / "recipe.toml").read_text() == (source / "recipe.toml").read_text()
    info = manifest(overnight_home, "longer-note")
    assert info["source"] == str(source)
    assert len(info["digest"]) == 64 and info["installed_at"]
    assert files_of(source) == before

    listed = json.loads(cli("recipes", "list", "--json").output)
    mine = [r for r in listed if r["name"] == "longer-note"][0]
    assert mine["origin"] == "installed"
    assert (mine["surface"], mine["metrics"], mine["agent"]) == ("text", ["command"], "scripted")
    assert mine["runs_code"] is True and mine["uses_llm"] is False and mine["trusted"] is False


def test_a_recipe_installed_from_a_zip_runs_by_name_after_trust(cli, workspace, overnight_home):
    archive = make_zip(workspace / "note.zip", recipe_texts(), top="longer-note-main/")

    assert cli("recipes", "install", archive, "--sha256", sha256(archive)).exit_code == 0
    refused = cli("run", "longer-note")  # no terminal, no --yes
    assert refused.exit_code != 0
    assert "have not trusted it" in refused.output

    result = cli("run", "longer-note", "--yes")

    assert result.exit_code == 0, result.output
    assert "Kept 1 of 1" in result.output
    # The run worked on a copy in ./longer-note; the installed recipe is never written.
    assert (workspace / "longer-note" / "recipe.toml").exists()
    assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "hello\n"
    assert manifest(overnight_home, "longer-note")["sha256"] == sha256(archive)


def test_install_from_a_tar_gz_file(cli, workspace, overnight_home):
    archive = make_tar(workspace / "note.tar.gz", recipe_texts())

    result = cli("recipes", "install", archive, "--name", "from-tar")

    assert result.exit_code == 0, result.output
    assert installed(overnight_home) == ["from-tar"]
    assert (overnight_home / "recipes" / "from-tar" / "proposals.jsonl").exists()


def test_install_from_a_url_served_on_this_machine(cli, workspace, overnight_home):
    served = workspace / "www"
    served.mkdir()
    archive = make_tar(served / "note.tar.gz", recipe_texts(), top="note/")
    with Server(served) as server:
        result = cli("recipes", "install", f"{server.url}/note.tar.gz", "--sha256", sha256(archive))

    assert result.exit_code == 0, result.output
    assert manifest(overnight_home, "longer-note")["source"].endswith("/note.tar.gz")


def test_install_from_a_local_git_repository_at_a_tag_and_in_a_subfolder(cli, workspace, overnight_home):
    repo = git_repo(workspace / "repo", recipe_texts(), subfolder="recipes/note")
    git(repo, "tag", "v1")
    (repo / "recipes" / "note" / "note.txt").write_text("changed after the tag\n")
    git(repo, "commit", "--quiet", "-am", "Later")

    result = cli("recipes", "install", f"git+file://{repo}@v1#subdirectory=recipes/note")

    assert result.exit_code == 0, result.output
    folder = overnight_home / "recipes" / "longer-note"
    assert (folder / "note.txt").read_text() == "hello\n"  # the tag, not the latest commit
    assert not (folder / ".git").exists()
    assert manifest(overnight_home, "longer-note")["commit"] == git(repo, "rev-parse", "v1")

    run = cli("run", "longer-note", "--yes")
    assert run.exit_code == 0, run.output
    assert "Kept 1 of 1" in run.output


def test_install_from_a_git_repository_at_a_commit(cli, workspace, overnight_home):
    repo = git_repo(workspace / "repo", recipe_texts())
    first = git(repo, "rev-parse", "HEAD")
    (repo / "note.txt").write_text("second\n")
    git(repo, "commit", "--quiet", "-am", "Second")

    result = cli("recipes", "install", f"git+file://{repo}@{first}")

    assert result.exit_code == 0, result.output
    assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "hello\n"


def test_github_shorthand_maps_to_a_github_https_url():
    from overnight.sharing.sources import parse

    source = parse("gh:someone/recipes/loans/balloon@v2")

    assert (source.kind, source.location) == ("git", "https://github.com/someone/recipes.git")
    assert (source.subfolder, source.ref) == ("loans/balloon", "v2")
    assert parse("gh:a/b").ref is None


def test_install_by_name_from_an_index_file_then_run(cli, workspace, overnight_home):
    shelf = workspace / "shelf"
    shelf.mkdir()
    archive = make_zip(shelf / "note.zip", recipe_texts())
    index = shelf / "index.toml"
    index.write_text(f'[recipes.note]\nsource = "note.zip"\nsha256 = "{sha256(archive)}"\nsummary = "A note"\n')

    added = cli("recipes", "index", "add", index)
    assert added.exit_code == 0, added.output
    assert "index" in cli("recipes", "index", "list").output
    result = cli("recipes", "install", "note")

    assert result.exit_code == 0, result.output
    info = manifest(overnight_home, "note")
    assert info["index"] == "index" and info["sha256"] == sha256(archive)
    run = cli("run", "note", "--yes")
    assert run.exit_code == 0, run.output


def test_install_by_name_from_an_index_served_over_http(cli, workspace, overnight_home):
    served = workspace / "www"
    served.mkdir()
    archive = make_tar(served / "note.tar.gz", recipe_texts())
    (served / "community.toml").write_text(f'[recipes.note]\nsource = "note.tar.gz"\nsha256 = "{sha256(archive)}"\n')
    with Server(served) as server:
        assert cli("recipes", "index", "add", f"{server.url}/community.toml").exit_code == 0
        result = cli("recipes", "install", "note")

    assert result.exit_code == 0, result.output
    assert manifest(overnight_home, "note")["resolved"].endswith("/note.tar.gz")


def test_an_index_digest_that_does_not_match_is_refused(cli, workspace, overnight_home):
    archive = make_zip(workspace / "note.zip", recipe_texts())
    (workspace / "index.toml").write_text(f'[recipes.note]\nsource = "note.zip"\nsha256 = "{"0" * 64}"\n')
    cli("recipes", "index", "add", workspace / "index.toml")

    result = cli("recipes", "install", "note")

    assert result.exit_code != 0
    assert f"has sha256 {sha256(archive)}, not the expected {'0' * 64}" in result.output
    nothing_left(overnight_home)


def test_update_reinstalls_from_the_source_and_remove_deletes(cli, workspace, overnight_home):
    source = recipe_folder(workspace / "src")
    cli("recipes", "install", source)
    first = manifest(overnight_home, "longer-note")["digest"]

    same = cli("recipes", "update", "longer-note")
    assert same.exit_code == 0 and "up to date" in same.output
    (source / "note.txt").write_text("a new starting note\n")
    changed = cli("recipes", "update", "longer-note")
    assert changed.exit_code == 0, changed.output
    assert f"digest {first} ->" in changed.output
    assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "a new starting note\n"

    removed = cli("recipes", "remove", "longer-note")
    assert removed.exit_code == 0
    assert installed(overnight_home) == []


def test_use_copies_into_a_folder_of_your_own_and_never_over_one(cli, workspace, overnight_home):
    cli("recipes", "install", recipe_folder(workspace / "src"))

    result = cli("recipes", "use", "longer-note", "mine")
    assert result.exit_code == 0, result.output
    assert (workspace / "mine" / "recipe.toml").exists()
    assert not (workspace / "mine" / ".overnight").exists()  # the manifest stays with the install

    (workspace / "mine" / "note.txt").write_text("my own edit\n")
    again = cli("recipes", "use", "longer-note", "mine")
    assert again.exit_code != 0
    assert "already exists" in again.output
    assert (workspace / "mine" / "note.txt").read_text() == "my own edit\n"


# -- hostile archives: refused, nothing written outside ------------------------------------


def hostile(cli, workspace, overnight_home, archive: Path, expect: str) -> None:
    outside = sorted(p.name for p in workspace.parent.iterdir())
    result = cli("recipes", "install", archive)
    assert result.exit_code != 0
    assert expect in result.output, result.output
    assert "Traceback" not in result.output
    nothing_left(overnight_home)
    assert sorted(p.name for p in workspace.parent.iterdir()) == outside
    assert not list(workspace.parent.rglob("evil*")) and not list(overnight_home.rglob("evil*"))


def test_a_zip_slip_archive_is_refused(cli, workspace, overnight_home):
    archive = make_zip(workspace / "slip.zip", {**recipe_texts(), "../../evil.txt": "gotcha"})
    hostile(cli, workspace, overnight_home, archive, "would be written outside the recipe folder")


def test_an_archive_with_an_absolute_path_is_refused(cli, workspace, overnight_home):
    archive = make_zip(workspace / "abs.zip", {**recipe_texts(), f"{workspace.parent}/evil.txt": "gotcha"})
    hostile(cli, workspace, overnight_home, archive, "has an absolute path")


def test_a_tar_with_dot_dot_is_refused(cli, workspace, overnight_home):
    archive = make_tar(workspace / "dots.tar.gz", {**recipe_texts(), "sub/../../evil.txt": "gotcha"})
    hostile(cli, workspace, overnight_home, archive, "would be written outside the recipe folder")


def test_a_tar_symlink_pointing_outside_is_refused(cli, workspace, overnight_home):
    archive = add_tar_link(workspace / "link.tar.gz", "evil", "../../..", files=recipe_texts())
    hostile(cli, workspace, overnight_home, archive, "is a link pointing outside the recipe folder")


def test_a_tar_symlink_to_an_absolute_path_is_refused(cli, workspace, overnight_home):
    archive = add_tar_link(workspace / "link.tar.gz", "evil", "/etc/passwd", files=recipe_texts())
    hostile(cli, workspace, overnight_home, archive, "is a link to an absolute path")


def test_a_tar_hard_link_outside_is_refused(cli, workspace, overnight_home):
    archive = add_tar_link(workspace / "hard.tar.gz", "evil", "../outside.txt", hard=True, files=recipe_texts())
    hostile(cli, workspace, overnight_home, archive, "is a link pointing outside the recipe folder")


def test_a_zip_symlink_pointing_outside_is_refused(cli, workspace, overnight_home):
    archive = zip_with_symlink(workspace / "link.zip", recipe_texts(), "evil", "../../../etc/passwd")
    hostile(cli, workspace, overnight_home, archive, "is a link pointing outside the recipe folder")


def test_a_symlink_then_a_file_through_it_cannot_escape(cli, workspace, overnight_home):
    # The classic two-step: a link to the parent, then a file written "through" the link.
    archive = add_tar_link(workspace / "two.tar.gz", "evil-dir", "..", files=recipe_texts())
    hostile(cli, workspace, overnight_home, archive, "is a link pointing outside the recipe folder")


def test_a_link_inside_the_archive_becomes_a_plain_copy(cli, workspace, overnight_home):
    archive = add_tar_link(workspace / "ok.tar.gz", "notes/copy.txt", "../note.txt", files=recipe_texts())

    result = cli("recipes", "install", archive)

    assert result.exit_code == 0, result.output
    copy = overnight_home / "recipes" / "longer-note" / "notes" / "copy.txt"
    assert copy.read_text() == "hello\n" and not copy.is_symlink()


def test_what_an_archive_ships_in_overnights_own_folder_is_not_installed(cli, workspace, overnight_home):
    """The digest leaves `.overnight/` out (a run's store, the install's manifest live there): an
    archive's own, a store or a manifest made up by its author, must not arrive with the recipe."""
    files = {**recipe_texts(), ".overnight/overnight.db": b"SQLite format 3\x00 made by the author",
             ".overnight/manifest.json": '{"source": "a source that never was"}',
             "notes/__pycache__/cached.pyc": b"\x00compiled"}
    archive = make_tar(workspace / "shipped.tar.gz", files, top="note/")

    result = cli("recipes", "install", archive)

    assert result.exit_code == 0, result.output
    folder = overnight_home / "recipes" / "longer-note"
    assert sorted(p.name for p in (folder / ".overnight").iterdir()) == ["manifest.json"]
    assert manifest(overnight_home, "longer-note")["source"] != "a source that never was"
    assert not (folder / "notes" / "__pycache__").exists()


def test_archives_over_the_file_count_or_size_limit_are_refused(cli, workspace, overnight_home, monkeypatch):
    from overnight.sharing import unpack

    monkeypatch.setattr(unpack, "MAX_FILES", 5)
    many = make_zip(workspace / "many.zip", {**recipe_texts(), **{f"data/{i}.txt": "x" for i in range(10)}})
    hostile(cli, workspace, overnight_home, many, "holds more than 5 files")

    monkeypatch.setattr(unpack, "MAX_FILES", 5000)
    monkeypatch.setattr(unpack, "MAX_BYTES", 1000)
    big = make_tar(workspace / "big.tar.gz", {**recipe_texts(), "data.bin": b"\0" * 5000})
    hostile(cli, workspace, overnight_home, big, "unpacks to more than")


def test_a_git_repository_with_a_link_out_is_refused(cli, workspace, overnight_home):
    repo = git_repo(workspace / "repo", recipe_texts())
    (repo / "evil").symlink_to("/etc/passwd")
    git(repo, "add", "evil")
    git(repo, "commit", "--quiet", "-m", "A link out")

    result = cli("recipes", "install", f"git+file://{repo}")

    assert result.exit_code != 0
    assert "evil is a link pointing outside the recipe folder" in result.output
    nothing_left(overnight_home)


# -- bad input: one sentence, non-zero exit, nothing kept ----------------------------------


def test_a_sha256_mismatch_is_refused_before_unpacking(cli, workspace, overnight_home):
    archive = make_zip(workspace / "note.zip", recipe_texts())

    result = cli("recipes", "install", archive, "--sha256", "ab" * 32)

    assert result.exit_code != 0
    assert f"has sha256 {sha256(archive)}, not the expected {'ab' * 32}: refused" in result.output
    nothing_left(overnight_home)


def test_a_malformed_sha256_is_refused(cli, workspace, overnight_home):
    archive = make_zip(workspace / "note.zip", recipe_texts())
    result = cli("recipes", "install", archive, "--sha256", "xyz")
    assert result.exit_code != 0 and "is not a sha256 digest" in result.output
    nothing_left(overnight_home)


def test_an_unknown_source_is_refused(cli, workspace, overnight_home):
    result = cli("recipes", "install", "no-such-thing")
    assert result.exit_code != 0
    assert "Unknown source 'no-such-thing'" in result.output
    missing = cli("recipes", "install", "nowhere/recipe.zip")
    assert missing.exit_code != 0 and "Unknown source" in missing.output
    nothing_left(overnight_home)


def test_an_unreachable_url_is_refused(cli, workspace, overnight_home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("recipes", "install", f"http://127.0.0.1:{port}/note.zip")
    assert result.exit_code != 0
    assert f"Cannot download http://127.0.0.1:{port}/note.zip" in result.output
    nothing_left(overnight_home)


def test_a_missing_file_on_a_server_is_refused(cli, workspace, overnight_home):
    with Server(workspace) as server:
        result = cli("recipes", "install", f"{server.url}/absent.zip")
    assert result.exit_code != 0 and "the server answered 404" in result.output
    nothing_left(overnight_home)


def test_plain_http_to_another_machine_is_refused(cli, workspace, overnight_home):
    result = cli("recipes", "install", "http://example.org/note.zip")
    assert result.exit_code != 0
    assert "plain http is accepted only from this machine" in result.output


def test_a_git_repository_that_does_not_exist_is_refused(cli, workspace, overnight_home):
    result = cli("recipes", "install", f"git+file://{workspace}/no-repo")
    assert result.exit_code != 0 and "Cannot clone" in result.output
    nothing_left(overnight_home)


def test_a_corrupt_archive_is_refused(cli, workspace, overnight_home):
    good = make_zip(workspace / "good.zip", recipe_texts()).read_bytes()
    (workspace / "broken.zip").write_bytes(good[: len(good) // 2])
    result = cli("recipes", "install", workspace / "broken.zip")
    assert result.exit_code != 0 and "corrupt or unreadable archive" in result.output
    (workspace / "text.tar.gz").write_text("this is not an archive at all")
    other = cli("recipes", "install", workspace / "text.tar.gz")
    assert other.exit_code != 0 and "is not a .zip or .tar.gz archive" in other.output
    nothing_left(overnight_home)


def test_an_archive_with_no_recipe_is_refused(cli, workspace, overnight_home):
    archive = make_zip(workspace / "empty.zip", {"README.md": "no recipe here"})
    result = cli("recipes", "install", archive)
    assert result.exit_code != 0 and "holds no recipe.toml" in result.output
    nothing_left(overnight_home)


def test_an_invalid_recipe_is_refused_with_every_problem(cli, workspace, overnight_home):
    texts = recipe_texts()
    texts["recipe.toml"] = texts["recipe.toml"].replace('kind = "command"', 'kind = "comand"').replace(
        "experiments = 2", "experiments = -1\nbogus = 3")
    archive = make_zip(workspace / "bad.zip", texts)

    result = cli("recipes", "install", archive)

    assert result.exit_code != 0
    assert "is not valid (3 problems); nothing was installed" in result.output
    assert "Unknown metric kind 'comand'. Did you mean 'command'?" in result.output
    assert "'experiments' must be at least 0" in result.output
    assert "unknown key 'bogus'" in result.output
    nothing_left(overnight_home)


def test_a_shared_recipe_that_names_where_notifications_go_is_refused(cli, workspace, overnight_home):
    texts = recipe_texts()
    texts["recipe.toml"] += '\n[notify]\nurls = ["json://127.0.0.1:18765/leak"]\non = ["finished"]\n'
    archive = make_zip(workspace / "notify.zip", texts)

    result = cli("recipes", "install", archive)

    assert result.exit_code != 0 and "nothing was installed" in result.output
    assert "[notify] urls: an installed or bundled recipe does not choose where notifications go" in result.output
    nothing_left(overnight_home)

def test_a_name_already_installed_is_refused_unless_forced(cli, workspace, overnight_home):
    source = recipe_folder(workspace / "src")
    cli("recipes", "install", source)
    (source / "note.txt").write_text("newer\n")

    again = cli("recipes", "install", source)
    assert again.exit_code != 0
    assert "'longer-note' is already installed: pass --force" in again.output
    assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "hello\n"

    forced = cli("recipes", "install", source, "--force")
    assert forced.exit_code == 0, forced.output
    assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "newer\n"
    assert installed(overnight_home) == ["longer-note"]


def test_removing_or_updating_an_unknown_recipe_is_refused(cli, workspace):
    removed = cli("recipes", "remove", "ghost")
    assert removed.exit_code != 0 and "There is no installed recipe named 'ghost'" in removed.output
    updated = cli("recipes", "update", "ghost")
    assert updated.exit_code != 0 and "There is no installed recipe named 'ghost' to update" in updated.output


def test_an_index_that_is_not_valid_toml_is_refused(cli, workspace, overnight_home):
    (workspace / "broken.toml").write_text('[recipes.note]\nsource = "note.zip\n')

    result = cli("recipes", "index", "add", workspace / "broken.toml")

    assert result.exit_code != 0
    assert "is not valid TOML (line 2" in result.output
    assert "no indexes" in cli("recipes", "index", "list").output.lower()


def test_an_index_with_bad_entries_names_each(cli, workspace):
    (workspace / "odd.toml").write_text('[recipes.a]\nsha256 = "12"\n[recipes.b]\nsource = "b.zip"\nsha256 = "nope"\n')
    result = cli("recipes", "index", "add", workspace / "odd.toml")
    assert result.exit_code != 0
    assert "[recipes.a]: missing key 'source'" in result.output
    assert "[recipes.b]: 'sha256' must be 64 hexadecimal characters" in result.output


def test_index_remove_and_unknown_index(cli, workspace):
    (workspace / "idx.toml").write_text('[recipes]\n')
    assert cli("recipes", "index", "add", workspace / "idx.toml").exit_code == 0
    assert cli("recipes", "index", "remove", "idx").exit_code == 0
    gone = cli("recipes", "index", "remove", "idx")
    assert gone.exit_code != 0 and "There is no index named 'idx'" in gone.output


def test_updating_a_pinned_archive_that_changed_is_refused_and_the_install_kept(cli, workspace, overnight_home):
    archive = make_zip(workspace / "note.zip", recipe_texts())
    cli("recipes", "install", archive, "--sha256", sha256(archive))
    make_zip(archive, {**recipe_texts(), "note.txt": "changed upstream\n"})

    refused = cli("recipes", "update", "longer-note")

    assert refused.exit_code != 0
    assert "not the expected" in refused.output
    assert "overnight recipes update longer-note --sha256 NEW" in refused.output
    assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "hello\n"
    accepted = cli("recipes", "update", "longer-note", "--sha256", sha256(archive))
    assert accepted.exit_code == 0, accepted.output
    assert (overnight_home / "recipes" / "longer-note" / "note.txt").read_text() == "changed upstream\n"
