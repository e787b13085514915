"""Surface `email`: an email template, rendered for every recipient.

The template's first line may be `Subject: ...`; the rest is the body. Many real
templates have no such line: the recipe's `subject` key then gives the subject (a
template too), and without either the emails have no subject. Jinja2 placeholders
(`{{ first_name }}`) are filled from each row of the recipients file (CSV with a
header, or JSONL). A proposal is measurable only if it renders for every recipient
with no unresolved placeholder and, when `max_words` is set, every body stays within it.

What a person reads is the rendered email, not the template: metrics that read text
(`judge`, `text-stats`) measure `renderings(view)`, every recipient's email, so a
required word is found in what recipients get, never in a placeholder's name.

What a metric finds in the work folder (materialize writes it):
    <template file name>     the template itself (the artifact)
    renders/<n>.txt          recipient n's email (n from 1, in file order):
                             "Subject: ...", a blank line, then the body (the body alone without a subject)
    renders.jsonl            one line per recipient: {"n", "recipient", "subject", "body", "words", "fields"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnight.core import workfolder
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.textfile import TextFileSurface

from . import templating
from .text_stats import stand_ins

SUBJECT = "subject:"
LABEL_FIELDS = ("email", "name", "first_name", "id")
SHOWN = 5  # recipients named in one sentence before "and N more"


@dataclass
class Rendering:
    n: int
    recipient: str  # a label people recognise: the email address, the name, or the row
    subject: str  # "" when the email has no subject
    body: str
    fields: dict[str, Any]

    @property
    def text(self) -> str:
        return f"Subject: {self.subject}\n\n{self.body}" if self.subject else self.body

    @property
    def reading(self) -> str:
        """What the recipient reads: the subject, a blank line, the body."""
        return f"{self.subject}\n\n{self.body}" if self.subject else self.body

    @property
    def words(self) -> int:
        return len(self.body.split())


class RenderProblem(Exception):
    """A template that cannot be rendered for some recipient; the message says which and why."""


class EmailSurface(TextFileSurface):
    name = "email"
    noun = "email template"
    summary = "An email template (an optional Subject: line, then the body) rendered for each recipient of a CSV or JSONL file."
    options = {
        "path": Option(str, "the template file: an optional 'Subject: ...' first line, then the body", required=True),
        "recipients": Option(str, "a CSV (with a header) or JSONL file, one recipient a row", required=True),
        "subject": Option(str, "the subject, for a template without a 'Subject:' line (placeholders allowed); "
                               "without either, the emails have no subject", default=None),
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

    def warnings(self) -> list[str]:
        """Stand-ins like [Product Name] that every recipient would receive as written."""
        found: dict[str, list[int]] = {}
        for number, line in enumerate(self.read_text().splitlines(), 1):
            for item in stand_ins(line):
                found.setdefault(item, []).append(number)
        if not found:
            return []
        shown = ", ".join(f"{item} (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))})"
                          for item, lines in found.items())
        return [f"the email template {self.source().name} holds stand-ins that every recipient would receive as "
                f"written: {shown}. Fill them in or make them {{{{ placeholders }}}}; a guard keeps them out of "
                f"proposals: [[guards]] kind = \"text-stats\", stat = \"placeholders\", max = 0"]

    def rules(self) -> str:
        if self.config.get("subject"):
            first = ("This is the body of an email template; the subject is set apart "
                     f"({self.config['subject']!r}): write no 'Subject:' line.")
        elif _subject_line(self.read_text()) is not None:
            first = "This is an email template: the first line is 'Subject: ...' and the rest is the body."
        else:
            first = "This is the body of an email template (the email has no subject line)."
        rules = [
            first,
            "It is rendered with Jinja2 for each recipient; the fields you may use are "
            + ", ".join("{{ " + f + " }}" for f in self.fields()) + ".",
            "Use no other placeholder, and write no [bracketed] stand-ins: every rendering is sent as is.",
        ]
        if self.config["max_words"]:
            rules.append(f"Every rendered body must have at most {self.config['max_words']} words.")
        rules.append("Return the whole new template" + (", Subject line first." if "'Subject: ...'" in first else "."))
        return " ".join(rules)

    def problems(self, view: str, base: str) -> list[str]:
        if _subject_line(base) is not None and _subject_line(view) is None and not self.config.get("subject"):
            return ["the first line must be 'Subject: ...', as in the original template"]
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
        """The email for each recipient; raises RenderProblem naming what fails and for whom
        (every recipient that lacks a field the template uses, and every field it lacks)."""
        keyed = self.config.get("subject")
        if keyed and _subject_line(view) is not None:
            raise RenderProblem(f"the template starts with a 'Subject:' line, but the recipe's subject key sets the "
                                f"subject ({keyed!r}); keep one of them")
        for text, what in ((view, "the template"), (keyed, "the subject key")):
            problem = templating.parse_problem(text) if text else None
            if problem:
                raise RenderProblem(f"{what} does not parse: {problem}")
        lined = _subject_line(view) is not None
        out, lacking = [], []
        for n, record in enumerate(self.recipients, 1):
            label = _label(record.fields) or f"row {n}"
            try:
                text = templating.render(view, record.fields)
                subject = templating.render(keyed, record.fields).strip() if keyed else ""
            except templating.TemplateProblem as exc:
                missing = _missing(view + "\n" + (keyed or ""), record.fields)
                if not missing:
                    raise RenderProblem(f"recipient {n} ({label}): {exc}") from None
                lacking.append((n, label, missing))
                continue
            body = text
            if lined:
                head, _, body = text.partition("\n")
                subject = head.strip()[len(SUBJECT):].strip()
            if (lined or keyed) and not subject:
                raise RenderProblem(f"recipient {n} ({label}): the subject is empty")
            out.append(Rendering(n, label, subject, body.strip("\n") + "\n", record.fields))
        if lacking:
            raise RenderProblem(self._lacking(lacking))
        return out

    def materialize(self, view: str, folder: Path) -> Path:
        target = super().materialize(view, folder)
        renders = self.renderings(view)
        shown = folder / "renders"
        if shown.is_symlink():  # a copy of the recipe folder's link: written through, it may lead to the person's files
            shown.unlink()
        shown.mkdir(exist_ok=True)
        lines = []
        for r in renders:
            workfolder.write(shown / f"{r.n}.txt", r.text.encode("utf-8"))
            lines.append(json.dumps({"n": r.n, "recipient": r.recipient, "subject": r.subject, "body": r.body,
                                     "words": r.words, "fields": r.fields}, ensure_ascii=False, default=str))
        workfolder.write(folder / "renders.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
        return target


    def degenerate(self, view: str) -> dict[str, str]:
        first = view.partition("\n")[0]
        return {"empty body": first + "\n\n.\n" if _subject_line(view) is not None else ".\n"}

    def _lacking(self, lacking: list[tuple[int, str, list[str]]]) -> str:
        """One sentence naming every placeholder the recipients file gives no value for, and for whom."""
        name = Path(self.config["recipients"]).name
        everyone = set(lacking[0][2]).intersection(*(m for _, _, m in lacking)) if len(lacking) == len(self.recipients) else set()
        parts = []
        if everyone:
            unknown = [m for m in lacking[0][2] if m in everyone]
            parts.append(f"{name} has no field {_join([repr(m) for m in unknown], 'or')} (its fields: {', '.join(self.fields())})")
        groups: dict[tuple, list[str]] = {}
        for n, label, missing in lacking:
            rest = tuple(m for m in missing if m not in everyone)
            if rest:
                groups.setdefault(rest, []).append(f"{n} ({label})")
        for missing, who in groups.items():
            named = _join(who) if len(who) <= SHOWN else ", ".join(who[:SHOWN]) + f" and {len(who) - SHOWN} more"
            verb = "recipients {} have" if len(who) > 1 else "recipient {} has"
            parts.append(f"{verb.format(named)} no value for {_join([repr(m) for m in missing])} in {name}")
        return "; ".join(parts)


def _subject_line(text: str) -> str | None:
    """The first line when it is a 'Subject: ...' line, else None."""
    first = text.partition("\n")[0]
    return first if first.strip().lower().startswith(SUBJECT) else None


def _missing(template: str, fields: dict) -> list[str]:
    """The placeholders a template uses that a recipient has no field for, in order of use."""
    try:
        used = templating.variables(template)
    except Exception:  # the template does not parse: reported on its own
        return []
    return sorted((name for name in used if name not in fields), key=lambda name: (template.find(name), name))


def _join(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


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
