"""Opening the TUI must stay quick: none of the heavy libraries is imported until it is needed."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.tui_support import run_once

HEAVY = ("litellm", "optuna", "formulas", "openpyxl", "sqlite_utils", "numpy")  # the store is read with sqlite3

# Opens the app on a store, waits for the dashboard to show the run, and says what was imported.
PROBE = """
import asyncio, json, sys, time
from overnight.cli.main import cli
cli.get_command(None, "tui")  # what `overnight tui` imports
from overnight.tui.app import OvernightApp
from overnight.tui.dashboard import Dashboard
from overnight.tui.experiment_table import ExperimentTable

async def main():
    app = OvernightApp(sys.argv[1])
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if isinstance(app.screen, Dashboard) and app.screen.query(ExperimentTable) and app.screen.query_one(ExperimentTable).rows:
                break
            await pilot.pause(0.05)
        return len(app.screen.query_one(ExperimentTable).rows)

shown = asyncio.run(main())
print(json.dumps({"shown": shown, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY,)


def test_the_tui_starts_without_importing_heavy_libraries(tmp_path):
    _, db = run_once(tmp_path)
    done = subprocess.run([sys.executable, "-c", PROBE, str(db)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["shown"] == 7
    assert report["heavy"] == []
