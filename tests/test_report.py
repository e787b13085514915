"""The morning's report, opened in a real headless Chromium: it renders with no console error, its
plot is drawn (the screenshot is not blank), and its text holds the run's figures, the best
change, the examples it fixed and broke, and the command to apply it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.core.kit import recipe
from tests.support.browser import CHROMIUM, MISSING, blank, render

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)

WORDS = '''
import pathlib

CASES = [("greet", "hello"), ("thank", "thanks"), ("bye", "goodbye"), ("ask", "please")]


def score(path):
    words = pathlib.Path(path).read_text().split()
    if "CRASH" in words:
        raise RuntimeError("asked to crash")
    examples = [{"id": name, "input": name, "expected": word, "output": word if word in words else "",
                 "score": float(word in words)} for name, word in CASES]
    return {"score": sum(e["score"] for e in examples), "examples": examples}
'''


def words_recipe(workspace: Path) -> Path:
    return recipe(workspace / "words", text="hello goodbye\n",
                  proposals=["hello\n", "CRASH\n", "thanks please goodbye\n", "thanks\n"],
                  metric='kind = "python"\nfile = "score.py"', budget="experiments = 8", files={"score.py": WORDS})


@needs_chromium
def test_the_report_of_a_run_opens_in_a_browser_with_its_figures(cli, workspace):
    folder = words_recipe(workspace)
    assert cli("run", folder, "--yes").exit_code == 0
    result = cli("report", "-o", "morning.html")
    assert result.exit_code == 0 and result.output.startswith("Wrote morning.html (")
    html = (workspace / "morning.html").read_text()
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # one file, no network

    page = render((workspace / "morning.html").resolve().as_uri(), elements=("img.plot",))
    (workspace / "report.png").write_bytes(page.screenshot)
    assert page.errors == []
    assert page.images and all(i["complete"] and i["width"] > 0 for i in page.images)
    assert not blank(page.shots["img.plot"]) and not blank(page.screenshot)
    text = page.text
    for expected in ("Run 1 of 'words'", "finished: the agent has no more proposals", "baseline\n2", "best (maximize)\n3",
                     "+50.0% at 1:3", "1 of 4", "1 crash, 2 discard, 1 keep", "-hello goodbye", "+thanks please goodbye",
                     "overnight apply 1:3", "Fixed by the best (2)", "Broken by the best (1)", "experiments: 4 of 8"):
        assert expected in text, expected
    fixed = text[text.index("Fixed by the best"):text.index("Broken by the best")]
    broken = text[text.index("Broken by the best"):text.index("Next")]
    assert "thank" in fixed and "ask" in fixed and "greet" in broken


@needs_chromium
def test_the_report_of_a_night_shows_workbook_cells_as_label_address_old_new(workspace):
    def overnight(*args):
        return subprocess.run([sys.executable, "-m", "overnight.cli.main", *args], cwd=workspace,
                              capture_output=True, text=True, timeout=240)

    assert overnight("recipes", "use", "pricing", "pricing").returncode == 0
    toml = workspace / "pricing" / "recipe.toml"
    toml.write_text(toml.read_text().replace("experiments = 80", "experiments = 12"))
    done = overnight("night", "pricing", "--yes")
    assert done.returncode == 0, done.stderr
    report = workspace / ".overnight" / "reports" / "night-1.html"
    page = render(report.resolve().as_uri(), elements=("img.plot",))
    assert page.errors == [] and not blank(page.shots["img.plot"])
    assert "overnight: night 1" in page.text and "Run 1 of 'pricing'" in page.text
    assert re.search(r"Price per unit\s+Inputs!B2\s+15 -> [\d.]+", page.text)
    assert re.search(r"overnight apply 1:\d+", page.text)


def test_open_hands_the_file_to_your_browser(cli, workspace, monkeypatch):
    folder = words_recipe(workspace)
    cli("run", folder, "--yes")
    opener = workspace / "opener.sh"
    opener.write_text(f'#!/bin/sh\necho "$1" > {workspace / "opened.txt"}\n')
    opener.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(opener))
    result = subprocess.run([sys.executable, "-m", "overnight.cli.main", "report", "1", "--open"], cwd=workspace,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "BROWSER": str(opener)})
    assert result.returncode == 0, result.stderr
    path = workspace / ".overnight" / "reports" / "run-1.html"
    assert result.stdout.startswith("Wrote .overnight/reports/run-1.html (")
    assert (workspace / "opened.txt").read_text().strip() == path.resolve().as_uri()


def test_report_mistakes_are_one_sentence(cli, workspace):
    result = cli("report")
    assert result.exit_code == 1 and "Error: No overnight store at" in result.output
    folder = words_recipe(workspace)
    cli("run", folder, "--yes")
    result = cli("report", "7")
    assert result.exit_code == 1 and "There is no run '7'" in result.output
    result = cli("report", "--night")
    assert result.exit_code == 1 and "There is no night in" in result.output and "overnight night RECIPE" in result.output
    (workspace / "folder").mkdir()
    result = cli("report", "-o", "folder")
    assert result.exit_code == 2 and "'folder' is a directory" in result.output
    (workspace / "file").write_text("mine\n")
    result = cli("report", "-o", "file/report.html")
    assert result.exit_code == 1 and "Error: Cannot write the report to file/report.html" in result.output
    assert (workspace / "file").read_text() == "mine\n"
    result = cli("report", "-o", "missing/report.html")
    assert result.exit_code == 1 and "Cannot write the report to missing/report.html: missing is not a folder." in result.output
    assert not (workspace / "missing").exists()
    store = workspace / ".overnight" / "overnight.db"
    before = store.read_bytes()
    result = cli("report", "-o", ".overnight/overnight.db")
    assert result.exit_code == 1 and "is overnight's store, so nothing was written" in result.output
    assert store.read_bytes() == before
    result = cli("report", "-o", "words/doc.txt")
    assert result.exit_code == 1 and "is a file of run 1's recipe, which only `overnight apply` writes" in result.output
    assert (workspace / "words" / "doc.txt").read_text() == "hello goodbye\n"


def test_help_status_and_a_run_import_neither_matplotlib_nor_apprise(workspace):
    """matplotlib is for `overnight report` only; apprise only once a notification is sent."""
    folder = words_recipe(workspace)
    probe = f"""
import json, sys
from overnight.cli.main import cli
for args in (["--help"], ["run", {str(folder)!r}, "--yes", "--quiet"], ["status"], ["night", "--help"], ["report", "--help"]):
    try:
        cli.main(args, standalone_mode=False)
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "apprise", "textual_serve"))))
"""
    done = subprocess.run([sys.executable, "-c", probe], cwd=workspace, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@needs_chromium
def test_the_browser_harness_sees_console_errors(tmp_path):
    """So that 'no console errors' above means something."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><p>x</p><script>console.error("it broke")</script><img src="missing.png"></body></html>')
    shown = render(page.as_uri())
    assert "it broke" in shown.errors and any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in shown.errors)
