"""Metric `command`: a shell command in the work folder prints the score."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from pathlib import Path

from overnight.core import process
from overnight.core.contracts import Measurement, MeasureRequest, Metric
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.secrets import is_secret_name, metric_env

# What may start a shell command without being a program on PATH: the shell's own words.
SHELL_WORDS = {"cd", "export", "set", ".", "source", "exec", "test", "[", "[[", "true", "false", ":", "if", "for", "while",
               "until", "case", "(", "{", "!", "env", "exit", "ulimit", "eval", "time", "umask", "unset", "trap", "command",
               "builtin", "printf", "echo", "read", "wait", "shift", "local", "declare", "readonly", "return"}
NUMBER = r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"



def with_env(env: dict) -> str:
    """What a command's `env` sets, for the trust question: PATH = "." makes `wc` the recipe's own
    program, so the command alone does not say what runs. Secret-looking values are masked."""
    if not env:
        return ""
    shown = ", ".join(f"{k}={'***' if is_secret_name(k) else v}" for k, v in env.items())
    return f" (with {shown})"

class CommandMetric(Metric):
    name = "command"
    summary = "Runs a shell command in the work folder and reads the score from its output."
    runs_code = True
    waits_on_commands = True
    options = {
        "run": Option(str, "the command; {file} is the candidate's path, {recipe} the work copy of the recipe folder, {python} the Python overnight runs on", required=True),
        "pattern": Option(str, "a regex whose first group is the score, read from stdout (default: the last number)", default=None),
        "json_file": Option(str, "a JSON file the command writes, holding the score", default=None),
        "json_key": Option(str, "the key of the score in json_file (dots for nesting)", default="score"),
        "deterministic": Option(bool, "false when the same input can score differently", default=True),
        "env": Option(dict, "extra environment variables", default={}),
        "env_passthrough": Option(list, "names of secret-looking environment variables the command may see (trust lists them)", default=[]),
    }
    # What the trust prompt and `recipes show` read from the options (overnight.sharing.reach).
    option_roles = {"run": "command", "json_file": "path", "env_passthrough": "env"}

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.deterministic = self.config["deterministic"]
        pattern = self.config["pattern"]
        try:
            self.regex = re.compile(pattern) if pattern else re.compile(NUMBER)
        except re.error as exc:
            raise OvernightError(f"The metric's pattern {pattern!r} is not a valid regular expression: {exc}.") from None

    def describe(self) -> str:
        return f"the number printed by `{self.config['run']}` ({self.goal})"

    def describe_code(self) -> list[str]:
        return [f"shell command in a work folder: {self.config['run']}" + with_env(self.config["env"])]

    def command(self, artifact: Path, recipe: Path | None = None) -> str:
        return (self.config["run"].replace("{file}", shlex.quote(str(artifact)))
                .replace("{recipe}", shlex.quote(str(recipe or self.recipe_dir)))
                .replace("{python}", shlex.quote(sys.executable)))

    def prepare(self, surface) -> None:
        try:
            words = shlex.split(self.command(Path("file")))
        except ValueError as exc:
            raise OvernightError(f"The metric command {self.config['run']!r} cannot be parsed: {exc}.") from None
        program = words[0] if words else ""
        if program in SHELL_WORDS or "=" in program or (self.recipe_dir / program).exists():
            return
        if not program or (not shutil.which(program) and not Path(program).exists()):
            raise OvernightError(f"The metric command {program!r} was not found (metric run = {self.config['run']!r}).")

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        copy = folder if self.reads == "folder" else self.recipe_dir  # the work copy: the recipe folder is read-only
        command = self.command(artifact, copy)
        env = {**metric_env(self.config["env_passthrough"]), **{k: str(v) for k, v in self.config["env"].items()},
               "OVERNIGHT_RECIPE_DIR": str(copy), "OVERNIGHT_SPLIT": request.split}
        done = process.run(command, cwd=folder, seconds=request.seconds, env=env, shell=True)
        trace = done.tail(50)
        if done.timed_out:
            return Measurement.timeout(request.seconds, trace, seconds=done.seconds)
        if done.returncode != 0:
            last = done.output.strip().splitlines()[-1:]
            said = f": {last[0][:200]}" if last else ""
            return Measurement.crash(f"the command {done.ended()}{said}", trace, seconds=done.seconds)
        if self.config["json_file"]:
            return self._from_json(folder, trace, done.seconds)
        found = self.regex.findall(done.stdout)
        if not found:
            what = f"matching {self.config['pattern']!r}" if self.config["pattern"] else ""
            return Measurement.crash(f"the command printed no number {what}".rstrip(), trace, seconds=done.seconds)
        last = found[0] if self.config["pattern"] else found[-1]
        value = last[0] if isinstance(last, tuple) else last
        try:
            number = float(value)
            if number in (float("inf"), float("-inf")) and "inf" not in value.lower():
                return Measurement.crash(f"the command printed a number too large for a float: {value.strip()[:12]}...",
                                         trace, seconds=done.seconds)
            return Measurement(number, trace=trace, seconds=done.seconds)
        except ValueError:
            return Measurement.crash(f"the pattern matched {value!r}, which is not a number", trace, seconds=done.seconds)

    def _from_json(self, folder: Path, trace: str, seconds: float) -> Measurement:
        file = folder / self.config["json_file"]
        try:
            data = json.loads(file.read_text())
            for key in self.config["json_key"].split("."):
                data = data[key]
            return Measurement(float(data), trace=trace, seconds=seconds)
        except FileNotFoundError:
            return Measurement.crash(f"the command did not write {self.config['json_file']}", trace, seconds=seconds)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return Measurement.crash(f"no number at key {self.config['json_key']!r} in {self.config['json_file']} ({exc})", trace, seconds=seconds)


@hookimpl
def overnight_register_metrics(register):
    register(CommandMetric)
