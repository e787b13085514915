"""Surface `email`: a subject and body template, rendered for every recipient.

The template's first line is `Subject: ...`; the rest is the body. Jinja2
placeholders (`{{ first_name }}`) are filled from each row of the recipients
file (CSV with a header, or JSONL). A proposal is measurable only if it renders
for every recipient with no unresolved placeholder and, when `max_words` is set,
every body stays within it.

What a metric finds in the work folder (materialize writes it):
    <template file name>     the template itself (the artifact)
    renders/<n>.txt          recipient n's email (n from 1, in file order):
                             "Subject: ...", a blank line, then the body
    renders.jsonl            one line per recipient: {"n", "recipient", "subject", "body", "words", "fields"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.textfile import TextFileSurface

from . import templating

SUBJECT = "subject:"
LABEL_FIELDS = ("email", "name", "first_name", "id")


@dataclass
class Rendering:
    n: int
    recipient: str  # a label people recognise: the email address, the name, or the row
    subject: str
    body: str
    fields: dict[str, Any]

    @property
    def text(self) -> str:
        return f"Subject: {self.subject}\n\n{self.body}"

    @property
    def words(self) -> int:
        return len(self.body.split())


class RenderProblem(Exception):
    """A template that cannot be rendered for some recipient; the message says which and why."""


class EmailSurface(TextFileSurface):
    name = "email"
    noun = "email template"
    summary = "An email template (Subject: line, then the body) rendered for each recipient of a CSV or JSONL file."
    options = {
        "path": Option(str, "the template file; its first line is 'Subject: ...'", required=True),
        "recipients": Option(str, "a CSV (with a header) or JSONL file, one recipient a row", required=True),
        "max_words": Option(int, "the most words a rendered body may have", default=None, min=1),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self._recipients: list[templating.Record] | None = None

    @property
    def recipients(self) -> list[templating.Record]:
        if self._recipients is None:
            self._recipients = templating.read_records(self.path(self.config["recipients"]), "recipients")
        return self._recipients

    def fields(self) -> list[str]:
        names: dict[str, None] = {}
        for r in self.recipients:
            names.update(dict.fromkeys(r.fields))
        return list(names)

    def read(self) -> str:
        path = self.source()
        text = self.read_text()
        # A template that cannot render for everyone cannot be measured: say so before the run.
        try:
            self.renderings(text)
        except RenderProblem as exc:
            raise OvernightError(f"The email template {path} cannot be used: {exc}.") from None
        return text

    def rules(self) -> str:
        rules = [
            "This is an email template: the first line is 'Subject: ...' and the rest is the body.",
            "It is rendered with Jinja2 for each recipient; the fields you may use are "
            + ", ".join("{{ " + f + " }}" for f in self.fields()) + ".",
            "Use no other placeholder, and write no [bracketed] stand-ins: every rendering is sent as is.",
        ]
        if self.config["max_words"]:
            rules.append(f"Every rendered body must have at most {self.config['max_words']} words.")
        rules.append("Return the whole new template, Subject line first.")
        return " ".join(rules)

    def problems(self, view: str, base: str) -> list[str]:
        try:
            renders = self.renderings(view)
        except RenderProblem as exc:
            return [str(exc)]
        limit = self.config["max_words"]
        if limit:
            long = [r for r in renders if r.words > limit]
            if long:
                worst = max(long, key=lambda r: r.words)
                return [f"the body for {_who(worst)} has {worst.words} words, over max_words = {limit}"
                        + (f" ({len(long)} recipients are over)" if len(long) > 1 else "")]
        return []

    def renderings(self, view: str) -> list[Rendering]:
        """The email for each recipient; raises RenderProblem naming the first that fails."""
        first, _, _ = view.partition("\n")
        if not first.strip().lower().startswith(SUBJECT):
            raise RenderProblem("the first line must be 'Subject: ...'")
        problem = templating.parse_problem(view)
        if problem:
            raise RenderProblem(f"the template does not parse: {problem}")
        out = []
        for n, record in enumerate(self.recipients, 1):
            label = _label(record.fields) or f"row {n}"
            try:
                text = templating.render(view, record.fields)
            except templating.TemplateProblem as exc:
                raise RenderProblem(f"recipient {n} ({label}): {exc}") from None
            head, _, body = text.partition("\n")
            subject = head.strip()[len(SUBJECT):].strip()
            if not subject:
                raise RenderProblem(f"recipient {n} ({label}): the subject is empty")
            out.append(Rendering(n, label, subject, body.strip("\n") + "\n", record.fields))
        return out

    def materialize(self, view: str, folder: Path) -> Path:
        target = super().materialize(view, folder)
        renders = self.renderings(view)
        (folder / "renders").mkdir(exist_ok=True)
        lines = []
        for r in renders:
            (folder / "renders" / f"{r.n}.txt").write_text(r.text, encoding="utf-8")
            lines.append(json.dumps({"n": r.n, "recipient": r.recipient, "subject": r.subject, "body": r.body,
                                     "words": r.words, "fields": r.fields}, ensure_ascii=False, default=str))
        (folder / "renders.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return target


    def degenerate(self, view: str) -> dict[str, str]:
        first = view.partition("\n")[0]
        return {"empty body": first + "\n\n.\n"}


def _label(fields: dict) -> str:
    for key in LABEL_FIELDS:
        value = fields.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def _who(r: Rendering) -> str:
    return f"recipient {r.n} ({r.recipient})"


@hookimpl
def overnight_register_surfaces(register):
    register(EmailSurface)
