"""Agent `scripted`: proposals read from a JSONL file, in order. For tests, demos, replays."""

from __future__ import annotations

import json
import threading

from overnight.core.contracts import Agent, Attempt, Context, Proposal, Surface
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option


class ScriptedAgent(Agent):
    name = "scripted"
    summary = "Proposals read from a JSONL file, one a line, used in order."
    instant = True  # read once, handed out from memory
    options = {
        "file": Option(str, "a JSONL file: {\"view\": ..., \"rationale\": ...} or {\"replace\": [old, new], ...}", required=True),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.lock = threading.Lock()
        self.proposals = self._read()
        self.done: set[int] = set()
        self.position = 0

    def _read(self) -> list[tuple[int, dict]]:
        file = self.path(self.config["file"])
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise OvernightError(f"The proposals file {file} does not exist (agent file = {self.config['file']!r}).") from None
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            # Decoded here, not by read_text, so the bad byte's offset is in the file and gives its line.
            number = len((data[:exc.start].decode("utf-8") + "x").splitlines())
            raise OvernightError(f"{file}:{number}: this line is not valid UTF-8 ({exc.reason}).") from None
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise OvernightError(f"{file}:{number}: this line is not valid JSON ({exc.msg}).") from None
            except RecursionError:  # json recurses once a level: thousands of [ or { overflow the stack
                raise OvernightError(f"{file}:{number}: this line is nested too deeply to read as JSON.") from None
            problem = _problem(item)
            if problem:
                raise OvernightError(f"{file}:{number}: {problem}.")
            out.append((number, item))
        return out

    def start(self, surface: Surface, history: list[Attempt]) -> None:
        # On --resume, skip what an earlier session already recorded, and nothing else; a
        # proposal cut short by a stop was never measured, so it is proposed again.
        self.done = {a.meta.get("line") for a in history if a.meta.get("line") and a.status != "interrupted"}

    def propose(self, context: Context) -> Proposal | None:
        with self.lock:
            while self.position < len(self.proposals) and self.proposals[self.position][0] in self.done:
                self.position += 1
            if self.position >= len(self.proposals):
                return None
            number, item = self.proposals[self.position]
            self.position += 1
        meta = {"line": number}
        rationale = item.get("rationale", "")
        if "view" in item:
            return Proposal(view=item["view"], rationale=rationale, meta=meta)
        old, new = item["replace"]
        return Proposal(edits=[(old, new)], rationale=rationale, meta=meta)


def _problem(item) -> str | None:
    if not isinstance(item, dict):
        return "each line must be a JSON object"
    if "view" in item:
        if not isinstance(item["view"], str):
            return "'view' must be a string"
    elif "replace" in item:
        r = item["replace"]
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(s, str) for s in r)):
            return "'replace' must be a list of two strings: [old, new]"
    else:
        return "each line needs 'view' (the whole new text) or 'replace' ([old, new])"
    if not isinstance(item.get("rationale", ""), str):
        return "'rationale' must be a string"
    # JSON may spell a lone surrogate ("\\ud800"); no UTF-8 text holds one, so the run would fail on it later.
    fields = {"view": [item["view"]]} if "view" in item else {"replace": item["replace"]}
    fields["rationale"] = [item.get("rationale", "")]
    for key, texts in fields.items():
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"'{key}' holds {text[exc.start]!r}, a lone surrogate, which UTF-8 cannot store"
    return None


@hookimpl
def overnight_register_agents(register):
    register(ScriptedAgent)
