"""Shared fixtures: a workspace folder of its own, the CLI, and the loopback LLM server."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.fixtures import llm_server  # noqa: F401  (a fixture)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def overnight_home(tmp_path_factory, monkeypatch) -> Path:
    """Installed recipes, indexes and trust go to a folder of each test's own, never the user's."""
    home = tmp_path_factory.mktemp("overnight-home")
    monkeypatch.setenv("OVERNIGHT_HOME", str(home))
    return home


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A fresh folder as the current directory, with its own store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OVERNIGHT_DB", raising=False)
    return tmp_path


@pytest.fixture
def cli(workspace):
    """Runs `overnight ARGS` in-process and returns click's Result."""
    from overnight.cli.main import cli as group

    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(group, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


def write(folder: Path, files: dict[str, str]) -> Path:
    """Writes a recipe folder from a dict of file names to (dedented) contents."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return folder
