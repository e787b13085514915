"""Agent `command`: any program proposes: a coding agent (Claude Code, Codex, aider) or a script of your own.

For each proposal overnight prepares a work folder: a copy of the recipe folder
with the current best candidate in place of the surface's file, and a brief
(OVERNIGHT_BRIEF.md: the person's instructions, what is measured, the editing
rules, the failing examples, the ledger of what was tried and why it was
rejected, recent crash logs, people's notes). The command runs there under its
own time limit; the file it leaves is the proposal, and the hypothesis is the
last `HYPOTHESIS: ...` line it prints or the first line of `hypothesis_file`.
Only the candidate's file is taken: other files it changes stay in the work
folder, which is removed, and the trace names them. A command that changes
nothing and prints a line `DONE` has no more proposals: the run ends.

The loop, not the command, measures and decides, exactly as for any agent: the
command cannot keep its own change, skip the metric or touch the person's files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from overnight.core import process, workfolder
from overnight.core.contracts import Agent, Context, Proposal, Surface
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.workfolder import IGNORE
from overnight.plugins.command import SHELL_WORDS, with_env

from .llm_agent import failing_examples, head_sections, hypothesis_of, tail_sections, without_new_secrets

BRIEF = "OVERNIGHT_BRIEF.md"
DONE = re.compile(r"^DONE\b.*$", re.MULTILINE)
MAX_FILES = 2000  # past this many files the other files' changes are not looked for
TAIL = 60  # lines of the command's output kept in the trace


class CommandAgent(Agent):
    name = "command"
    summary = "Runs a program (a coding agent or your own script) that edits the candidate in a work folder."
    runs_code = True
    # The hypothesis file is removed before each proposal: a path out of the folder would be a file deleted there.
    option_roles = {"hypothesis_file": "path"}
    options = {
        "run": Option(str, "the command; {brief} is the brief's path, {file} the candidate's, {folder} the work folder, "
                           "{recipe} the recipe folder, {python} the Python overnight runs on", required=True),
        "timeout": Option(float, "seconds one proposal may take; the command and all it started are then killed",
                          default=600.0, min=1),
        "instructions": Option(str, "a file (such as program.md) whose text heads the brief", default=None),
        "hypothesis_file": Option(str, "a file the command may write its hypothesis to, in the work folder",
                                  default="HYPOTHESIS.txt"),
        "history": Option(int, "how many past experiments the brief lists", default=20, min=0),
        "env": Option(dict, "extra environment variables for the command", default={}),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.instructions = ""
        self.surface: Surface | None = None

    def describe_code(self) -> list[str]:
        return [f"command run for each proposal, in a work folder: {self.config['run']}" + with_env(self.config["env"])]

    def prepare(self, surface: Surface) -> None:
        self.surface = surface
        hypothesis = Path(self.config["hypothesis_file"])
        if hypothesis.is_absolute() or ".." in hypothesis.parts or not hypothesis.parts:
            raise OvernightError(f"The agent's hypothesis_file {str(hypothesis)!r} must name a file inside the work folder "
                                 "(it is removed before each proposal), such as \"HYPOTHESIS.txt\".")
        self._check_program()
        name = self.config.get("instructions")
        if name:
            try:
                self.instructions = self.path(name).read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise OvernightError(f"The instructions file {self.path(name)} does not exist (agent instructions = {name!r}).") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise OvernightError(f"Cannot read the instructions file {self.path(name)} (agent instructions = {name!r}): {exc}.") from None
        with tempfile.TemporaryDirectory(prefix="overnight-agent-") as scratch:
            view = surface.read()
            written = surface.materialize(view, Path(scratch))
            try:
                same = written.read_text(encoding="utf-8") == view
            except (OSError, UnicodeDecodeError):
                same = False
        if not same:
            raise OvernightError(f"The command agent edits the candidate as a text file, and a '{surface.name}' surface's "
                                 f"file is not its text; use it with a text, prompt, email or config surface.")

    def _check_program(self) -> None:
        try:
            words = shlex.split(self.config["run"])
        except ValueError as exc:
            raise OvernightError(f"The agent command {self.config['run']!r} cannot be parsed: {exc}.") from None
        program = words[0] if words else ""
        if program in SHELL_WORDS or "=" in program or program == "{python}" or (self.recipe_dir / program).exists():
            return
        if not program or (not shutil.which(program) and not Path(program).exists()):
            raise OvernightError(f"The agent command {program!r} was not found (agent run = {self.config['run']!r}).")

    # -- one proposal ------------------------------------------------------------------

    def propose(self, context: Context) -> Proposal | None:
        folder = Path(tempfile.mkdtemp(prefix="overnight-agent-"))
        try:
            shutil.copytree(self.recipe_dir, folder, ignore=IGNORE, symlinks=True, dirs_exist_ok=True)
            target = self.surface.materialize(context.best_view, folder)
            name = target.relative_to(folder).as_posix()
            brief = folder / BRIEF
            workfolder.write(brief, self.brief(context, name).encode("utf-8"))  # a link of that name is replaced
            (folder / self.config["hypothesis_file"]).unlink(missing_ok=True)
            before = _digests(folder)
            command = self.command(brief, target, folder)
            done = process.run(command, cwd=folder, seconds=self.config["timeout"], env=self._env(brief, target), shell=True)
            trace = f"$ {command}\n{done.tail(TAIL)}"
            meta = {"seconds": round(done.seconds, 2), "exit": done.returncode}
            if done.timed_out:
                return Proposal(error=f"the command took longer than {self.config['timeout']:g} s (agent timeout)", trace=trace, meta=meta)
            if done.returncode != 0:
                last = done.output.strip().splitlines()[-1:]
                said = f": {last[0][:200]}" if last else ""
                return Proposal(error=f"the command {done.ended()}{said}", trace=trace, meta=meta)
            return self._proposal(context, folder, target, name, done.stdout, before, trace, meta)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _proposal(self, context, folder: Path, target: Path, name: str, stdout: str, before: dict, trace: str,
                  meta: dict) -> Proposal | None:
        try:
            view = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Proposal(error=f"the command deleted {name}", trace=trace, meta=meta)
        except (OSError, UnicodeDecodeError) as exc:
            return Proposal(error=f"the command left {name} unreadable as text: {exc}", trace=trace, meta=meta)
        if view == context.best_view:
            if DONE.search(stdout):
                return None  # it has nothing more to propose: the run ends
            return Proposal(error=f"the command left {name} unchanged", trace=trace, meta=meta)
        hypothesis = _last_hypothesis(stdout)
        if not hypothesis:
            written = folder / self.config["hypothesis_file"]
            if written.is_file():
                hypothesis = next((line.strip() for line in written.read_text(errors="replace").splitlines() if line.strip()), "")[:300]
        after = _digests(folder)
        ours = {name, BRIEF, self.config["hypothesis_file"]}
        others = sorted(p for p in (set(before) | set(after)) - ours if before.get(p) != after.get(p))
        if others:
            shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
            trace += f"\n(only {name} is taken; the command's changes to {shown} were thrown away)"
        return Proposal(view=without_new_secrets(view, context.best_view), rationale=hypothesis or "(no hypothesis given)",
                        trace=trace, meta=meta)

    def brief(self, c: Context, name: str) -> str:
        """The brief: what a person would tell a colleague before asking for one change."""
        hypothesis_file = self.config["hypothesis_file"]
        out = [f"# Your task\nImprove the file `{name}` in this folder with one focused change, editing it in place. "
               f"Only that file is taken; changes to other files are thrown away. The change is measured afterwards "
               f"and kept only if the score improves. When you are done, print one line `HYPOTHESIS: <what you "
               f"changed and why it should raise the score>` (or write that line to `{hypothesis_file}`). If you "
               f"have no change left to propose, leave the file as it is and print a line `DONE`."]
        out += head_sections(c, self.instructions)
        failing = failing_examples(c)
        if failing:
            out.append("# Failing examples\nTraining examples where the current best or a recent attempt falls short:\n\n"
                       + "\n\n".join(failing))
        out += tail_sections(c, self.config["history"])
        return "\n\n".join(out) + "\n"

    def command(self, brief: Path, target: Path, folder: Path) -> str:
        values = {"{brief}": brief, "{file}": target, "{folder}": folder, "{recipe}": self.recipe_dir, "{python}": sys.executable}
        command = self.config["run"]
        for key, value in values.items():
            command = command.replace(key, shlex.quote(str(value)))
        return command

    def _env(self, brief: Path, target: Path) -> dict:
        return {**os.environ, **{k: str(v) for k, v in self.config["env"].items()},
                "OVERNIGHT_BRIEF": str(brief), "OVERNIGHT_FILE": str(target), "OVERNIGHT_RECIPE_DIR": str(self.recipe_dir)}


def _last_hypothesis(text: str) -> str:
    for line in reversed(text.splitlines()):
        found = hypothesis_of(line)
        if found:
            return found
    return ""


def _digests(folder: Path) -> dict[str, str]:
    files = {}
    for path in folder.rglob("*"):
        if len(files) >= MAX_FILES:
            break
        if path.is_file() and not path.is_symlink():
            files[path.relative_to(folder).as_posix()] = _digest_of(path)
    return files


def _digest_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@hookimpl
def overnight_register_agents(register):
    register(CommandAgent)
