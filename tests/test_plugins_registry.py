"""Plugins: found through the `overnight` entry-point group like any third-party package,
listed with their versions and what they provide; a broken one is reported, never fatal."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from overnight.core import entrypoints, plugins
from overnight.core.errors import OvernightError
from overnight.core.plugins import Registry
from tests.data.core.kit import no_traceback, recipe

BUILT_INS = {"text": ("surface", "text"), "command": ("metric", "command"),
             "python": ("metric", "python"), "scripted": ("agent", "scripted")}


@pytest.fixture
def extra_plugins(monkeypatch):
    def use(modules: str):
        monkeypatch.setenv("OVERNIGHT_PLUGINS", modules)
        plugins.registry.cache_clear()

    yield use
    plugins.registry.cache_clear()


def test_plugins_lists_every_plugin_its_version_and_what_it_provides(cli):
    result = cli("plugins")
    assert result.exit_code == 0
    for name, (kind, provided) in BUILT_INS.items():
        assert f"{name} 0.1.0 (built-in)" in result.output
        assert f"  {kind:<8} {provided:<12} " in result.output

    items = {p["name"]: p for p in json.loads(cli("plugins", "--json").output)}
    entry_points = {ep.name for ep in importlib.metadata.entry_points(group="overnight")}
    assert entry_points <= set(items)
    for name, (kind, provided) in BUILT_INS.items():
        item = items[name]
        assert item["version"] == "0.1.0 (built-in)" and item["error"] == ""
        assert [e["name"] for e in item["provides"][kind]] == [provided]
        assert item["provides"][kind][0]["summary"]


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(workspace, cli, extra_plugins):
    extra_plugins("tests.data.core.broken_plugin,tests.data.core.probe")
    result = cli("plugins")
    assert result.exit_code == 0
    assert ("tests.data.core.broken_plugin: failed to load: ImportError: this plugin needs a library "
            "that is not installed") in result.output
    assert "tests.data.core.probe" in result.output and "  agent    probe" in result.output
    items = {p["name"]: p for p in json.loads(cli("plugins", "--json").output)}
    assert items["tests.data.core.broken_plugin"]["error"].startswith("ImportError: ")
    assert items["text"]["error"] == ""

    # Everything else still works.
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    run = cli("run", folder, "--yes")
    assert run.exit_code == 0 and "Kept 1 of 1" in run.output


def test_a_broken_plugin_in_a_real_process(workspace):
    repository = Path(__file__).resolve().parents[1]  # so that `tests` can be imported
    env = {**os.environ, "OVERNIGHT_PLUGINS": "tests.data.core.broken_plugin, no.such.module",
           "PYTHONPATH": str(repository)}
    done = subprocess.run([sys.executable, "-m", "overnight.cli.main", "plugins"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "tests.data.core.broken_plugin: failed to load: ImportError" in done.stdout
    assert "no.such.module: failed to load: ModuleNotFoundError" in done.stdout
    assert "text 0.1.0 (built-in)" in done.stdout
    assert no_traceback(done.stdout + done.stderr)


def test_registry_load_with_modules_only():
    reg = Registry().load(modules=["tests.data.core.broken_plugin", "tests.data.core.probe"], entry_points=False)
    broken = reg.broken()
    assert [b.name for b in broken] == ["tests.data.core.broken_plugin"]
    assert "not installed" in broken[0].error
    assert set(reg.classes["agent"]) == {"probe"} and set(reg.classes["metric"]) == {"length"}
    assert reg.plugins["tests.data.core.probe"].provides == {"surface": [], "metric": ["length"], "agent": ["probe"],
                                                          "executor": []}


def test_a_third_party_plugin_cannot_take_a_built_in_kind(cli, extra_plugins):
    reg = Registry().load(modules=["tests.data.core.clashing_plugin"])
    info = reg.plugins["tests.data.core.clashing_plugin"]
    assert info.refused == ["metric 'command' refused: the built-in plugin 'command' has that kind already"]
    assert info.error == "" and reg.plugins["command"].error == ""
    assert reg.get("metric", "command").__name__ == "CommandMetric"
    # Whatever order pluggy calls the hooks in: the built-ins register first.
    reg = Registry()
    reg.pm.register(importlib.import_module("tests.data.core.clashing_plugin"), name="early")
    reg.plugins["early"] = plugins.PluginInfo("early")
    reg.load()
    assert reg.get("metric", "command").__name__ == "CommandMetric" and reg.plugins["early"].refused

    extra_plugins("tests.data.core.clashing_plugin")
    shown = cli("plugins").output
    assert "command 0.1.0 (built-in)" in shown
    assert "  metric 'command' refused: the built-in plugin 'command' has that kind already" in shown


def test_unknown_kind_names_the_plugins_that_failed_to_load():
    reg = Registry().load(modules=["tests.data.core.broken_plugin"])
    with pytest.raises(OvernightError) as err:
        reg.get("metric", "needs-a-library")
    assert "Plugins that failed to load: tests.data.core.broken_plugin (see `overnight plugins`)." in err.value.message


def test_a_plugin_whose_command_hook_raises_leaves_help_working(workspace):
    repository = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OVERNIGHT_PLUGINS": "tests.data.core.raising_commands,tests.data.core.probe",
           "PYTHONPATH": str(repository)}
    shown = subprocess.run([sys.executable, "-m", "overnight.cli.main", "--help"], capture_output=True, text=True,
                           env=env, timeout=60)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr
    assert "probe-hello" in shown.stdout and "Usage:" in shown.stdout
    assert ("Warning: the plugin 'tests.data.core.raising_commands' failed in overnight_register_commands and was "
            "skipped: RuntimeError: this plugin's commands are broken") in shown.stderr


def test_unknown_kind_suggests_and_lists():
    reg = Registry().load(entry_points=True)
    with pytest.raises(OvernightError) as err:
        reg.get("agent", "scriptd")
    assert "Unknown agent kind 'scriptd'. Did you mean 'scripted'?" in err.value.message
    assert "Available: " in err.value.message and "scripted" in err.value.message


def test_a_plugin_adds_a_command_that_help_lists(workspace):
    repository = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OVERNIGHT_PLUGINS": "tests.data.core.probe", "PYTHONPATH": str(repository)}
    main = [sys.executable, "-m", "overnight.cli.main"]
    shown = subprocess.run([*main, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0 and "probe-hello  Says hello (a command added by a plugin)." in shown.stdout
    said = subprocess.run([*main, "probe-hello"], capture_output=True, text=True, env=env, timeout=60)
    assert said.returncode == 0 and said.stdout == "hello from a plugin command\n"
    plain = subprocess.run([*main, "--help"], capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in env.items() if k != "OVERNIGHT_PLUGINS"})
    assert "probe-hello" not in plain.stdout and "  run " in plain.stdout


def test_plugins_kind_lists_every_key_with_its_type_default_and_meaning(cli):
    result = cli("plugins", "judge")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "metric judge  (from judge 0.1.0 (built-in))"
    assert "Keys of its [metric] or [[guards]] table:" in result.output
    row = next(line for line in lines if line.split()[:1] == ["pass_grade"])
    assert row.split()[1:3] == ["number", "7"] and "the grade at which a text counts as passed (1 to 10)" in row
    row = next(line for line in lines if line.split()[:1] == ["rubric"])
    assert row.split()[1:3] == ["string", "required"]
    row = next(line for line in lines if line.split()[:1] == ["mode"])
    assert '"score"' in row and "(one of score, pairwise)" in row
    # The keys every metric and guard table shares are listed too.
    assert "Every [metric] table also takes:" in result.output and "Every [[guards]] table also takes:" in result.output
    assert any(line.split()[:3] == ["weight", "number", "1"] for line in lines)


def test_plugins_kind_as_json_comes_from_the_plugins_own_schema(cli):
    from overnight.core.plugins import registry
    from overnight.plugins.spreadsheet import SpreadsheetSurface

    data = json.loads(cli("plugins", "spreadsheet", "--json").output)
    assert (data["kind"], data["name"]) == ("surface", "spreadsheet")
    assert [k["name"] for k in data["keys"]] == list(SpreadsheetSurface.options)
    assert {k["name"]: k["type"] for k in data["entries"]["cells"]}["integer"] == "true/false"
    # Every registered plugin describes every key it takes.
    reg = registry()
    for kind, classes in reg.classes.items():
        for name, cls in classes.items():
            keys = json.loads(cli("plugins", name, "--json").output)
            keys = keys if isinstance(keys, list) else [keys]
            mine = next(k for k in keys if k["kind"] == kind)
            assert [k["name"] for k in mine["keys"]] == list(cls.options)
            assert all(k["meaning"] for k in mine["keys"]), (kind, name)


def test_plugins_of_an_unknown_kind_says_what_there_is(cli):
    result = cli("plugins", "celll")
    assert result.exit_code == 1
    assert "Error: No plugin provides the kind 'celll'. Did you mean 'cell'? Available: cell, command," in result.output
    assert "Traceback" not in result.output


def test_versions_are_read_only_when_shown_and_the_entry_points_are_scanned_once(monkeypatch):
    # Reading a package's metadata costs milliseconds each: `recipes list` and `run` never ask for it.
    scans, read = [], []
    find, dist = entrypoints.find, entrypoints.EntryPoint.dist
    monkeypatch.setattr(entrypoints, "find", lambda groups: scans.append(groups) or find(groups))
    monkeypatch.setattr(entrypoints.EntryPoint, "dist", property(lambda ep: read.append(ep.name) or dist.fget(ep)))
    plugins._entry_points.cache_clear()
    try:
        reg = Registry().load()
        Registry().load(builtins=False)
        Registry().watching()
        assert len(scans) == 1  # the other registries reuse the scan
        assert read == []
        assert reg.plugins["text"].builtin and reg.get("surface", "text").name == "text"
        assert reg.plugins["text"].version == "0.1.0 (built-in)"  # read now, when asked
        assert read == ["text"]
    finally:
        plugins._entry_points.cache_clear()


def test_a_registry_on_demand_imports_only_the_plugins_asked_for():
    # `recipes list`, `show` and `validate` read recipes: they import the plugins a recipe names.
    probe = ("import sys\nfrom overnight.core.plugins import kinds\n"
             "print(kinds().get('surface', 'text').name, kinds().get('metric', 'command').name)\n"
             "print(sorted(m for m in sys.modules if m.startswith('overnight.plugins.')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "OVERNIGHT_PLUGINS"})
    assert done.returncode == 0, done.stderr
    names, imported = done.stdout.splitlines()
    assert names == "text command"
    assert "overnight.plugins.text" in imported and "overnight.plugins.command" in imported
    assert "overnight.plugins.spreadsheet" not in imported and "overnight.plugins.ray_executor" not in imported


def test_a_registry_on_demand_keeps_every_rule_of_a_full_one():
    # A built-in kind stays the built-in's, whatever else is installed.
    reg = Registry().on_demand(modules=["tests.data.core.clashing_plugin"])
    assert reg.get("metric", "command").__name__ == "CommandMetric"
    # A kind only a third-party plugin has is found once every built-in has had its turn.
    reg = Registry().on_demand(modules=["tests.data.core.probe", "tests.data.core.broken_plugin"])
    assert reg.get("agent", "probe").name == "probe"
    assert reg.plugins["text"].builtin and reg.get("surface", "text").name == "text"
    # An unknown kind is told as by a full registry: every kind there is, and what failed to load.
    with pytest.raises(OvernightError) as err:
        reg.get("agent", "scriptd")
    assert "Did you mean 'scripted'?" in err.value.message and "probe" in err.value.message
    assert "Plugins that failed to load: tests.data.core.broken_plugin" in err.value.message


def test_the_built_ins_declared_observers_are_exactly_those_with_an_event_hook():
    # A run imports only the built-ins its recipe names, and those declared in the
    # `overnight.observers` group of pyproject.toml: a built-in that watches runs and is not
    # declared would never hear one (reinstall overnight after changing that group).
    reg = Registry().load(modules=["tests.data.core.raising_events"])
    hooked = {impl.plugin_name for impl in reg.pm.hook.overnight_event.get_hookimpls()}
    assert "tests.data.core.raising_events" in hooked  # the check sees a hook where there is one
    assert plugins._observers() == {name for name in hooked if reg.plugins[name].builtin}
    assert all(not info.error for info in reg.plugins.values()), reg.broken()


def test_a_run_imports_the_plugins_its_recipe_names_and_every_one_that_watches():
    probe = ("import sys\nfrom overnight.core.plugins import for_run\n"
             "def mine(): return sorted(m for m in sys.modules if m.startswith(('overnight.plugins.', 'tests.data.core.')))\n"
             "reg = for_run()\nprint(mine())\n"
             "print(sorted(i.plugin_name for i in reg.pm.hook.overnight_event.get_hookimpls()))\n"
             "print(reg.get('surface', 'text').name, reg.get('metric', 'command').name, reg.get('agent', 'scripted').name)\n"
             "print(mine())")
    repository = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=repository,
                          env={**os.environ, "OVERNIGHT_PLUGINS": "tests.data.core.raising_events",
                               "PYTHONPATH": str(repository)})
    assert done.returncode == 0, done.stderr
    before, watching, names, after = done.stdout.splitlines()
    # Every third-party plugin is imported at once (what it watches is unknown until then); of the
    # built-ins, only those that watch (and the scripted agent, which the test plugin imports itself).
    assert eval(before) == ["overnight.plugins.notify", "overnight.plugins.scripted", "tests.data.core.raising_events"]
    assert eval(watching) == ["notify", "tests.data.core.raising_events"]
    assert names == "text command scripted"
    assert eval(after) == ["overnight.plugins.command", "overnight.plugins.notify", "overnight.plugins.scripted",
                           "overnight.plugins.text", "tests.data.core.raising_events"]


def test_a_run_registry_keeps_every_rule_of_a_full_one():
    # A third party imported early still cannot take a built-in's kind, whichever is asked first.
    reg = Registry().watching(modules=["tests.data.core.clashing_plugin"])
    assert reg.get("metric", "command").__name__ == "CommandMetric"
    reg = Registry().watching(modules=["tests.data.core.clashing_plugin", "tests.data.core.probe"])
    assert reg.get("agent", "probe").name == "probe"  # only a third party has it: every built-in had its turn
    assert reg.get("metric", "command").__name__ == "CommandMetric"
    assert reg.plugins["tests.data.core.clashing_plugin"].refused == [
        "metric 'command' refused: the built-in plugin 'command' has that kind already"]
    # A broken one is reported, never fatal; an unknown kind is told as by a full registry.
    reg = Registry().watching(modules=["tests.data.core.broken_plugin"])
    assert reg.get("surface", "text").name == "text"
    with pytest.raises(OvernightError) as err:
        reg.get("agent", "scriptd")
    assert "Did you mean 'scripted'?" in err.value.message
    assert "Plugins that failed to load: tests.data.core.broken_plugin" in err.value.message


def test_an_install_that_declares_no_observers_imports_every_built_in_for_a_run(monkeypatch):
    # Metadata written before the `overnight.observers` group existed: no watcher may be missed.
    everything = plugins._entry_points()
    monkeypatch.setattr(plugins, "_entry_points", lambda: tuple(ep for ep in everything if ep.group == plugins.GROUP))
    reg = Registry().watching()
    assert not reg.pending and {"text", "notify", "spreadsheet"} <= set(reg.plugins)
