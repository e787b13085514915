"""Plugins are found without importing importlib.metadata, with the same answer it gives:
the same entry points, in the same order, from the same distribution when two share a name;
and importlib.metadata itself wherever the two could differ."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from overnight.core import entrypoints
from overnight.core.plugins import GROUP, OBSERVERS

GROUPS = (GROUP, OBSERVERS, "console_scripts")


def seen(found) -> list[tuple]:
    return [(ep.group, ep.name, ep.value, ep.dist_name) for ep in found]


def importlibs(groups=GROUPS) -> list[tuple]:
    everything = importlib.metadata.entry_points()
    return [(ep.group, ep.name, ep.value, entrypoints._dist_name(ep.dist))
            for group in groups for ep in everything.select(group=group)]


def by_group(found) -> list[tuple]:
    return sorted(found, key=lambda ep: GROUPS.index(ep[0]))  # importlib.metadata sorts by group, stably


def dist(root: Path, folder: str, entry_points: str | None) -> None:
    (root / folder).mkdir(parents=True)
    if entry_points is not None:
        (root / folder / "entry_points.txt").write_text(entry_points)


def test_the_installed_plugins_are_found_as_importlib_metadata_finds_them():
    # In a fresh interpreter, as a command starts: plain folders on sys.path, the standard finder alone.
    probe = ("import json\nfrom overnight.core import entrypoints\nfrom tests.test_entry_points import importlibs, seen\n"
             f"found = entrypoints.scan({GROUPS!r})\n"
             "print(json.dumps([None if found is None else seen(found), importlibs()]))")
    repository = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=repository)
    assert done.returncode == 0, done.stderr
    found, expected = json.loads(done.stdout)
    assert found is not None  # nothing was left to importlib.metadata
    assert by_group([tuple(ep) for ep in found]) == [tuple(ep) for ep in expected]
    assert ["overnight", "text", "overnight.plugins.text", "overnight"] in found
    assert [ep[1] for ep in found if ep[0] == OBSERVERS] == ["notify"]
    # Here, where the test suite has imported much (importlib_metadata, whose finder takes the
    # standard one's place, among it), the answer is the same.
    assert by_group(seen(entrypoints.find(GROUPS))) == importlibs()


def test_a_name_installed_twice_the_first_on_the_path_wins_and_odd_files_read_alike(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    dist(first, "Shadowed_Pkg-2.0.dist-info", None)  # first on the path, with no entry points at all
    dist(second, "shadowed.pkg-1.0.dist-info", "[overnight]\nhidden = hidden_module\n")
    dist(first, "odd-1.0.dist-info", "# a comment\n\n  [[overnight]]  \n  spaced   =  spaced.module : thing [extra]\n"
                                     "[overnight.observers]\nwatcher = odd.watch\n[other]\nignored = x\n")
    dist(first, "legacy.egg-info", "[overnight]\nlegacy = legacy.plugin\n")
    (first / "plain.egg-info").write_text("Metadata-Version: 1.0\n")  # an old-style egg-info file
    dist(second, "later-3.0.dist-info", "[console_scripts]\nlater = later:main\n[overnight]\nlater = later.plugin\n")
    dist(second, "odd-0.9.dist-info", "[overnight]\nshadowed = never.seen\n")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second)])
    found = entrypoints.scan(GROUPS)
    assert found is not None
    assert by_group(seen(found)) == importlibs()
    names = {ep.name for ep in found}
    assert {"spaced", "watcher", "legacy", "later"} <= names and not {"hidden", "shadowed"} & names


def test_a_zip_on_the_path_is_left_to_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-1.0.dist-info/entry_points.txt", "[overnight]\nzipped = zipped.plugin\n")
        z.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    assert entrypoints.scan(GROUPS) is None
    found = entrypoints.find(GROUPS)
    assert seen(found) == importlibs() == [("overnight", "zipped", "zipped.plugin", "zipped")]
    assert found[0].dist.version == "1.0"


def test_another_finder_of_distributions_is_left_to_importlib_metadata(monkeypatch):
    class Finder:
        @staticmethod
        def find_distributions(context=None):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    assert entrypoints.scan(GROUPS) is None
    assert by_group(seen(entrypoints.find(GROUPS))) == importlibs()


def test_an_entry_point_loads_as_importlib_metadatas_does(tmp_path, monkeypatch):
    (tmp_path / "somewhere").mkdir()
    (tmp_path / "somewhere" / "__init__.py").write_text("")
    (tmp_path / "somewhere" / "deep.py").write_text("class Holder:\n    class Inner:\n        pass\n")
    dist(tmp_path, "somewhere-1.0.dist-info", "[overnight]\nmodule = somewhere.deep\nattr = somewhere.deep : Holder.Inner [x]\n")
    (tmp_path / "somewhere-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: somewhere\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delitem(sys.modules, "somewhere", raising=False)
    monkeypatch.delitem(sys.modules, "somewhere.deep", raising=False)
    module, attr = [ep for ep in entrypoints.scan((GROUP,)) if ep.dist_name == "somewhere"]
    assert module.load() is sys.modules["somewhere.deep"] and attr.load() is sys.modules["somewhere.deep"].Holder.Inner
    assert module.dist.version == "1.0"  # read when asked


@pytest.mark.parametrize("command", ["run", "help"])
def test_neither_a_run_nor_help_imports_importlib_metadata(command, tmp_path):
    probe = {
        "run": ("from overnight.core.plugins import for_run\nreg = for_run()\n"
                "[reg.get(k, n) for k, n in (('surface', 'text'), ('metric', 'command'), ('agent', 'scripted'))]\n"),
        "help": ("import sys\nsys.argv = ['overnight', '--help']\nfrom overnight.cli.main import main\n"
                 "try:\n    main()\nexcept SystemExit:\n    pass\n"),
    }[command] + "import sys\nprint(sorted(m for m in ('importlib.metadata', 'email.message') if m in sys.modules))\n"
    env = {k: v for k, v in os.environ.items() if k != "OVERNIGHT_PLUGINS"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
