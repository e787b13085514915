"""Metric `python`: a function in a file of the recipe scores the materialized file.

It runs in a subprocess, so a hang is killed at the time limit like any command.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from overnight.core import process
from overnight.core.contracts import ExampleResult, Measurement, MeasureRequest, Metric
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.secrets import metric_env

# Runs in the child: imports the recipe's file, calls the function, writes its result as JSON to a
# file of its own. Not to stdout: output is kept only up to a cap (core/process.py), and a result
# with every example of a large dataset is megabytes.
CHILD = r"""
import importlib.util, json, sys
file, function, artifact, out = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("overnight_recipe_metric", file)
module = importlib.util.module_from_spec(spec)
sys.path.insert(0, str(__import__("pathlib").Path(file).parent))
spec.loader.exec_module(module)
result = getattr(module, function)(artifact)
with open(out, "w", encoding="utf-8") as f:
    json.dump(result, f, default=str)
"""


class PythonMetric(Metric):
    name = "python"
    summary = "Calls a Python function of the recipe with the materialized file's path."
    runs_code = True
    waits_on_commands = True  # the function runs in a child Python, through core.process.run
    options = {
        "file": Option(str, "a .py file in the recipe folder", required=True),
        "function": Option(str, "the function to call", default="score"),
        "deterministic": Option(bool, "false when the same input can score differently", default=True),
        "env_passthrough": Option(list, "names of secret-looking environment variables the function may see (trust lists them)", default=[]),
    }
    option_roles = {"file": "code", "env_passthrough": "env"}

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.deterministic = self.config["deterministic"]

    def describe(self) -> str:
        return f"{self.config['function']}() in {self.config['file']} ({self.goal})"

    def describe_code(self) -> list[str]:
        return [f"Python function {self.config['function']}() from {self.path(self.config['file'])}"]

    def prepare(self, surface) -> None:
        file = self.path(self.config["file"])
        if not file.exists():
            raise OvernightError(f"The metric file {file} does not exist (metric file = {self.config['file']!r}).")

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        file = self.path(self.config["file"])
        copy = folder / file.relative_to(self.recipe_dir.resolve()) if file.is_relative_to(self.recipe_dir.resolve()) else file
        file = str(copy if copy.is_file() else file)  # the work copy: the recipe folder is read-only to metrics
        env = {**metric_env(self.config["env_passthrough"]), "OVERNIGHT_RECIPE_DIR": str(folder if self.reads == "folder" else self.recipe_dir)}
        fd, out = tempfile.mkstemp(prefix="overnight-result-", suffix=".json")
        os.close(fd)
        try:
            args = [sys.executable, "-c", CHILD, file, self.config["function"], str(artifact), out]
            done = process.run(args, cwd=folder, seconds=request.seconds, env=env)
            trace = done.tail(50)
            if done.timed_out:
                return Measurement.timeout(request.seconds, trace, seconds=done.seconds)
            result = _read(out) if done.returncode == 0 else ""
        finally:
            with contextlib.suppress(OSError):  # the function may have removed it
                os.unlink(out)
        if not result:
            last = done.output.strip().splitlines()[-1:] or ["no output"]
            return Measurement.crash(f"the function failed: {last[0]}", trace, seconds=done.seconds)
        try:
            return _measurement(json.loads(result), trace, done.seconds)
        except (ValueError, TypeError) as exc:  # its result file written into, or an example's score no number
            return Measurement.crash(f"the function's result could not be read ({exc}): return a number, or "
                                     "{\"score\": number, \"examples\": [...]}", trace, seconds=done.seconds)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _measurement(result, trace: str, seconds: float) -> Measurement:
    if isinstance(result, dict):
        examples = [
            ExampleResult(
                id=str(e.get("id", i)), input=str(e.get("input", "")), output=str(e.get("output", "")),
                expected=str(e.get("expected", "")), score=float(e.get("score", 0.0)),
                feedback=str(e.get("feedback", "")), split=str(e.get("split", "train")),
            )
            for i, e in enumerate(result.get("examples", []))
        ]
        value = result.get("score")
    else:
        examples, value = [], result
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return Measurement.crash(f"the function returned {value!r}, not a number", trace, seconds=seconds)
    try:
        return Measurement(float(value), examples=examples, trace=trace, seconds=seconds)
    except OverflowError:
        return Measurement.crash(f"the function returned a number too large to measure ({str(value)[:20]}...)", trace, seconds=seconds)


@hookimpl
def overnight_register_metrics(register):
    register(PythonMetric)
