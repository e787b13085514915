"""Metric `text-stats`: counts and readability of a text, offline and instant.

Words, characters, sentences, syllables, Flesch reading ease, Flesch-Kincaid
grade level, how often banned and required words appear, and how many [bracketed]
stand-ins are left to fill in (`placeholders`: [Product Name], [x]). `stat` picks
the number that becomes the value; every figure goes to the trace, so `overnight
show` and an agent see all of them. As a guard it keeps a text short, readable,
free of banned words and stand-ins, or holding every required one.

On a surface that renders one text per recipient (the `email` surface), it measures
what recipients read, every recipient's email, not the template: a placeholder's
name (`{{ invoice_url }}`) never counts as the word "invoice". `emails` says how the
emails make one figure: `worst` (the default: the longest, the hardest to read, the
most banned words or stand-ins, the fewest required words), `mean`, `min` or `max`.
`file` measures one file of the work folder instead (the template itself, say).

The readability formulas are the published ones (Flesch 1948; Kincaid et al.
1975). A word's syllables are the larger of two counts: the hyphenation points of
pyphen's en_US dictionary, and a spelling heuristic (vowel groups, silent final e,
-ed and -es endings). The dictionary alone is measurably worse: TeX's patterns put a
break only where a syllable ends, but leave many out (o-ver, la-zy, a-gree), so on
the prose of this repository it agrees with the CMU pronouncing dictionary on 90%
of words, the spelling rules on 96%, the larger of the two on 97%
(bench/syllables.py prints the figures).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from overnight.core.contracts import Measurement, MeasureRequest, Metric
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

STATS = (
    "words", "characters", "sentences", "syllables", "reading_ease", "grade_level",
    "banned", "required", "missing_required", "placeholders",
)
# Over several emails, the worst one is the one with the most of these, or the least of the others.
HIGHER_IS_WORSE = {"words", "characters", "sentences", "syllables", "grade_level", "banned", "missing_required", "placeholders"}
EMAILS = ("worst", "mean", "min", "max")
# A stand-in left to fill in: [Product Name], [x], [ ]; not a link's text ([here](...)) nor a citation ([1]).
STAND_IN = re.compile(r"\[(?!\d+\])[^\[\]\n]{1,40}\](?!\()")
SHOWN = 10  # emails listed one a line in the trace
# Letters and digits, joined by an apostrophe or hyphen (don't, well-known) or, between
# digits, by a point or comma (3.5, 1,000): each such run is one word.
WORD = re.compile(r"[^\W_]+(?:(?:['’\-]|(?<=\d)[.,](?=\d))[^\W_]+)*")
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n\s*\n")


class TextStatsMetric(Metric):
    name = "text-stats"
    summary = "Words, characters, sentences, readability, banned and required words of a text; offline."
    options = {
        "stat": Option(str, "the figure to use: " + ", ".join(STATS), default="reading_ease", choices=STATS),
        "banned": Option(list, "words or phrases that should not appear (stat banned counts them)", default=[]),
        "required": Option(list, "words or phrases that should appear (stats required, missing_required)", default=[]),
        "case_sensitive": Option(bool, "match banned and required words with their case", default=False),
        "file": Option(str, "read this file of the work folder instead of the surface's file", default=None),
        "emails": Option(str, "on an email surface, how every recipient's email makes one figure: "
                              "worst (the default), mean, min or max", default="worst", choices=EMAILS),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        # Another file of the work folder may come from the recipe; the candidate alone needs no copy.
        self.reads = "folder" if self.config["file"] else "file"
        self.renderings = None  # the surface's, when it renders one text per recipient

    def describe(self) -> str:
        over = f" over every recipient's email ({self.config['emails']})" if self.renderings else ""
        return f"text-stats {self.config['stat']}{over} ({self.goal})"

    def prepare(self, surface) -> None:
        renderings = getattr(surface, "renderings", None)
        if callable(renderings) and not self.config["file"]:
            self.renderings, self.reads = renderings, "view"  # rendered from the view: nothing to write
        for key in ("banned", "required"):
            bad = [w for w in self.config[key] if not isinstance(w, str) or not w.strip()]
            if bad:
                raise OvernightError(f"The text-stats metric's '{key}' list must hold words (non-empty strings), not {bad[0]!r}.")
        stat = self.config["stat"]
        if stat == "banned" and not self.config["banned"]:
            raise OvernightError("The text-stats metric has stat = 'banned' but no 'banned' list of words.")
        if stat in ("required", "missing_required") and not self.config["required"]:
            raise OvernightError(f"The text-stats metric has stat = '{stat}' but no 'required' list of words.")
        _hyphenation()  # loaded now rather than within the first measurement's time limit

    def validate(self, surface) -> list[str]:
        """What `overnight recipes validate` reports: what `run` checks before spending (no model is called)."""
        try:
            self.prepare(surface)
        except OvernightError as exc:
            return [exc.message]
        return []

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        if self.renderings is not None:
            return self._emails(request.view or artifact.read_text(encoding="utf-8"))
        path = folder / self.config["file"] if self.config["file"] else artifact
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Measurement.crash(f"text-stats found no file {path.name} in the work folder")
        except (OSError, UnicodeDecodeError) as exc:
            return Measurement.crash(f"text-stats cannot read {path.name} as text: {exc}")
        figures = stats(text, self.config["banned"], self.config["required"], self.config["case_sensitive"])
        trace = _trace(figures)
        value = figures[self.config["stat"]]
        if value is None:
            return Measurement.crash(f"{self.config['stat']} is undefined for a text with no words", trace)
        return Measurement(float(value), trace=trace)

    def _emails(self, view: str) -> Measurement:
        """The figure over every recipient's email, the trace naming whose is which."""
        c, stat = self.config, self.config["stat"]
        emails = self.renderings(view)
        figures = [stats(r.reading, c["banned"], c["required"], c["case_sensitive"]) for r in emails]
        known = [(f[stat], r) for f, r in zip(figures, emails) if f[stat] is not None]
        if not known:
            return Measurement.crash(f"{stat} is undefined for emails with no words", _trace(figures[0]) if figures else "")
        how = c["emails"]
        if how == "mean":
            value, which = sum(v for v, _ in known) / len(known), None
        else:
            highest = how == "max" or (how == "worst" and stat in HIGHER_IS_WORSE)
            value, which = (max if highest else min)(known, key=lambda pair: pair[0])
        head = f"{stat} {_show(value)}: the {how} of {len(emails)} emails" + (f" ({_who(which)})" if which else "")
        lines = [head] + [f"{_who(r)}: " + _figures(f) for f, r in list(zip(figures, emails))[:SHOWN]]
        if len(emails) > SHOWN:
            lines.append(f"... and {len(emails) - SHOWN} more emails")
        for key, what in (("banned_found", "banned words present"), ("required_missing", "required words missing"),
                          ("stand_ins", "stand-ins left to fill in")):
            where: dict[str, list[int]] = {}
            for f, r in zip(figures, emails):
                for word in f[key]:
                    where.setdefault(word, []).append(r.n)
            if where:
                lines.append(f"{what}: " + ", ".join(f"{w!r} (recipient{'s' if len(ns) > 1 else ''} "
                                                     f"{', '.join(map(str, ns[:SHOWN]))}{' ...' if len(ns) > SHOWN else ''})"
                                                     for w, ns in where.items()))
        return Measurement(float(value), trace="\n".join(lines))


def stand_ins(text: str) -> list[str]:
    """The [bracketed] stand-ins of a text, each once, in order."""
    return list(dict.fromkeys(STAND_IN.findall(text)))


def stats(text: str, banned=(), required=(), case_sensitive: bool = False) -> dict:
    """Every figure for one text; readability is None when there are no words."""
    words = WORD.findall(text)
    syllables = sum(syllable_count(w) for w in words)
    sentences = sum(1 for part in SENTENCE_END.split(text) if WORD.search(part))
    out = {
        "words": len(words),
        "characters": len(text.strip()),
        "sentences": sentences,
        "syllables": syllables,
        "reading_ease": None,
        "grade_level": None,
    }
    if words:
        per_sentence = len(words) / max(sentences, 1)
        per_word = syllables / len(words)
        out["reading_ease"] = round(206.835 - 1.015 * per_sentence - 84.6 * per_word, 4)
        out["grade_level"] = round(0.39 * per_sentence + 11.8 * per_word - 15.59, 4)
    found_banned = {w: _occurrences(text, w, case_sensitive) for w in banned}
    found_required = {w: _occurrences(text, w, case_sensitive) for w in required}
    out["banned"] = sum(found_banned.values())
    out["required"] = sum(1 for n in found_required.values() if n)
    out["missing_required"] = len(found_required) - out["required"]
    out["banned_found"] = [w for w, n in found_banned.items() if n]
    out["required_missing"] = [w for w, n in found_required.items() if not n]
    out["placeholders"] = len(STAND_IN.findall(text))
    out["stand_ins"] = stand_ins(text)
    return out


def syllable_count(word: str) -> int:
    """Syllables of one English word: by its hyphenation or by its spelling, whichever finds more."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 1  # a number or a symbol is read as (at least) one syllable
    return max(len(_hyphenation().positions(w)) + 1, by_spelling(w))


@cache
def _hyphenation():
    import pyphen  # its dictionary takes a tenth of a second to load: once, on first use

    return pyphen.Pyphen(lang="en_US")


def by_spelling(w: str) -> int:
    """Syllables of a lower-case word of letters a-z, by spelling rules."""
    n = len(re.findall(r"[aeiouy]+", w))
    if n > 1:
        if w.endswith("e") and not re.search(r"[^aeiouy]le$", w) and not w.endswith(("ee", "ye")):
            n -= 1  # silent e: make, time (but table, agree keep theirs)
        elif re.search(r"[^aeiouytd]ed$", w):
            n -= 1  # jumped, called (but wanted, needed keep theirs)
        elif re.search(r"[^aeiouyscxzgh]es$", w):
            n -= 1  # makes, notes (but boxes, pages, wishes keep theirs)
    return max(1, n)


def _occurrences(text: str, phrase: str, case_sensitive: bool) -> int:
    words = [re.escape(part) for part in phrase.split()]
    # A word joined by an underscore is a name ({{ invoice_url }}), not the word itself.
    pattern = r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"
    return len(re.findall(pattern, text, 0 if case_sensitive else re.IGNORECASE))


def _trace(f: dict) -> str:
    lines = [_figures(f)]
    if f["banned_found"]:
        lines.append("banned words present: " + ", ".join(repr(w) for w in f["banned_found"]))
    if f["required_missing"]:
        lines.append("required words missing: " + ", ".join(repr(w) for w in f["required_missing"]))
    if f["stand_ins"]:
        lines.append("stand-ins left to fill in: " + ", ".join(repr(w) for w in f["stand_ins"]))
    return "\n".join(lines)


def _figures(f: dict) -> str:
    return " ".join(f"{k} {_show(f[k])}" for k in STATS)


def _show(x) -> str:
    return "-" if x is None else f"{x:g}" if isinstance(x, float) else str(x)


def _who(r) -> str:
    return f"recipient {r.n} ({r.recipient})"


@hookimpl
def overnight_register_metrics(register):
    register(TextStatsMetric)
