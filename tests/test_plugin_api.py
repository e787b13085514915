"""The public plugin API: one import line, contracts an author cannot half-implement, and the
README's plugin example installed as a real package and run end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.core.kit import experiments, no_traceback, recipe

ROOT = Path(__file__).resolve().parents[1]
OVERNIGHT = [sys.executable, "-c", "from overnight.cli.main import main; main()"]


def readme_block(first_line: str) -> str:
    """The README's fenced code block that starts with this line."""
    blocks = re.findall(r"^```\w*\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S | re.M)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"the README has no single block starting with {first_line!r}"
    return found[0]


def test_one_import_line_holds_what_a_plugin_author_needs():
    import overnight.api as api
    from overnight.core import contracts, errors, hookspecs, options

    assert api.Metric is contracts.Metric and api.ParametricSurface is contracts.ParametricSurface
    assert api.hookimpl is hookspecs.hookimpl and api.Option is options.Option
    assert api.OvernightError is errors.OvernightError
    for name in ("hookimpl", "Surface", "ParametricSurface", "Metric", "Agent", "Measurement", "Proposal",
                 "Context", "Option", "Parameter", "ExampleResult", "OvernightError", "MeasureRequest"):
        assert name in api.__all__ and getattr(api, name)


def test_the_api_imports_no_heavy_library():
    probe = ("import json, sys\nimport overnight.api\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'litellm', 'optuna', 'formulas', 'openpyxl', 'textual', 'rich', 'tenacity', 'pyphen', 'click'})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_methods_an_author_must_write_are_abstract_and_documented():
    from overnight.api import Agent, Metric, ParametricSurface, Surface

    assert Surface.__abstractmethods__ == {"source", "read", "materialize", "apply"}
    assert ParametricSurface.__abstractmethods__ == Surface.__abstractmethods__ | {"parameters", "view_from", "values_of"}
    assert Metric.__abstractmethods__ == {"measure"} and Agent.__abstractmethods__ == {"propose"}
    for method in (Surface.read, Metric.measure, Agent.propose):
        doc = method.__doc__ or ""
        assert "thread" in doc and ("Writes" in doc or "writes" in doc), method.__qualname__
    assert "request.seconds" in Metric.measure.__doc__


def test_a_plugin_class_that_leaves_out_a_method_is_refused_and_listed(workspace, overnight_home, tmp_path):
    package = tmp_path / "pkgs"
    package.mkdir()
    (package / "half_done.py").write_text(
        "from overnight.api import Metric, hookimpl\n\n"
        "class Wordy(Metric):\n    name = 'wordy'\n    summary = 'Forgot to measure.'\n\n"
        "@hookimpl\ndef overnight_register_metrics(register):\n    register(Wordy)\n")
    env = {**os.environ, "PYTHONPATH": f"{package}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OVERNIGHT_PLUGINS": "half_done"}

    listed = subprocess.run([*OVERNIGHT, "plugins"], capture_output=True, text=True, cwd=workspace, env=env, timeout=60)

    assert listed.returncode == 0, listed.stderr
    assert "half_done: failed to load: TypeError: Wordy does not implement measure" in listed.stdout
    assert no_traceback(listed.stdout + listed.stderr)


def test_the_readme_plugin_installs_as_a_package_and_runs_a_recipe(workspace, overnight_home, tmp_path):
    source = tmp_path / "my-overnight-plugin"
    source.mkdir()
    module = readme_block("# my_overnight_plugin.py\n")
    assert "from overnight.api import" in module and "overnight.core" not in module
    (source / "my_overnight_plugin.py").write_text(module)
    (source / "pyproject.toml").write_text(readme_block("# the plugin's pyproject.toml\n"))
    site = tmp_path / "site"
    # A real install: pip builds the wheel with setuptools and writes its entry points where
    # importlib.metadata finds them, as for any package; offline, without touching this venv.
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                            "--no-build-isolation", "--target", str(site), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert (site / "my_overnight_plugin.py").is_file()
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OVERNIGHT_DB": str(workspace / "run.db")}
    env.pop("OVERNIGHT_PLUGINS", None)

    listed = subprocess.run([*OVERNIGHT, "plugins", "--json"], capture_output=True, text=True, cwd=workspace,
                            env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    mine = {p["name"]: p for p in json.loads(listed.stdout)}["lines"]
    assert mine["version"] == "0.1.0" and mine["error"] == ""
    assert [m["name"] for m in mine["provides"]["metric"]] == ["lines"]

    folder = recipe(workspace / "notes", text="one\n\ntwo\nthree\n",
                    metric='kind = "lines"', budget="experiments = 3",
                    proposals=["one\ntwo\n", "one two three four\n\n\n", "one\n\n\ntwo\nthree\nfour\n"])
    ran = subprocess.run([*OVERNIGHT, "run", str(folder), "--yes"], capture_output=True, text=True,
                         cwd=workspace, env=env, timeout=120)

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert no_traceback(ran.stdout + ran.stderr)
    rows = experiments(workspace / "run.db")
    # Blank lines do not count (skip_blank defaults to true); fewer lines is better.
    assert [(r["status"], r["score"]) for r in rows] == [("baseline", 3.0), ("keep", 2.0), ("keep", 1.0),
                                                          ("discard", 4.0)]
    assert "baseline 3 -> best 1" in ran.stdout
