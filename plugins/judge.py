"""Metric `judge`: a model grades the candidate against a rubric; its reasons are the feedback.

What is graded: the candidate's text, or, when the surface renders one text per
recipient (the `email` surface), each recipient's email separately.

`mode = "score"`: each text gets a grade from 1 to 10, `samples` times; the
value is the mean grade. A text passes at `pass_grade` (7 of 10 by default): its
per-example result shows its grade and the judge's reasons, and its score is its
share of the way to the pass grade (1 at or above it), so "8 of 10 passed" means
eight texts were graded at least 7.

`mode = "pairwise"`: each text is compared with the current best's, asked in
both orders so that a judge who favours the first (or second) version cancels
out. The value climbs a ladder: the baseline is 0, and a candidate scores the
best's value plus its margin (its share of wins minus one half), so "beats the
best" means exactly "won more than half of the comparisons". The loop says which
version is the best (`MeasureRequest.best_view`); a measurement made without one
(a confirmation at the end of a run, a dry run) compares with the original.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from overnight.core.contracts import ExampleResult, Measurement, MeasureRequest, Metric
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

from . import fanout, grading

MODES = ("score", "pairwise")


@dataclass
class Item:
    """One text to grade, with what a reader of the results needs to recognise it."""

    id: str
    about: str
    text: str
    input: str = ""


class JudgeMetric(Metric):
    name = "judge"
    summary = "A model grades the candidate (or each recipient's email) against a rubric, 1 to 10 or pairwise against the best."
    uses_llm = True
    reads = "file"  # the materialized candidate (and an email's renderings beside it)
    options = {
        "rubric": Option(str, "the rubric: its text, or a file of the recipe such as rubric.md", required=True),
        "model": Option(str, "the judge model, in litellm's naming (e.g. openai/gpt-4o-mini)", required=True),
        "api_base": Option(str, "the judge's server, for Ollama or any OpenAI-compatible server", default=None),
        "temperature": Option(float, "the judge's temperature", default=0.0, min=0),
        "max_tokens": Option(int, "the longest reply (default 400; 16000 for a model that reasons)", default=None, min=16),
        "price": Option(dict, "dollars per million tokens, { input = 1.0, output = 5.0 }, for a model litellm has no price for", default=None),
        "options": Option(dict, "Ollama model options such as { num_ctx = 8192 } (ollama_chat/ models only)", default={}),
        "samples": Option(int, "grades asked per text; their mean counts", default=1, min=1, max=50),
        "mode": Option(str, "score (1 to 10) or pairwise (against the current best)", default="score", choices=MODES),
        "pass_grade": Option(float, "score mode: the grade at which a text counts as passed", default=7.0, min=1, max=10),
        "concurrency": Option(int, "judge calls at once", default=4, min=1, max=256),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.deterministic = self.config["temperature"] == 0
        self.rubric = ""
        self.surface = None
        self.original = ""  # the person's own version, the pairwise reference when no best is given

    def describe(self) -> str:
        c = self.config
        if c["mode"] == "pairwise":
            return (f"{c['model']}'s preference over the current best, asked both ways, against the rubric "
                    f"(0 is the baseline; each keep adds its margin) ({self.goal})")
        return f"{c['model']}'s grade (1 to 10) against the rubric, mean of {c['samples']} ({self.goal})"

    def prepare(self, surface) -> None:
        self.surface = surface
        self.original = surface.read()
        self.rubric = grading.read_rubric(self.config["rubric"], self.recipe_dir)
        if self.llm is not None:
            from overnight.core import llm as gateway, providers

            c = self.config
            providers.check_options(c["model"], c["options"])
            self.llm.check_model(c["model"], c["api_base"], price=c["price"], where="[metric]")
            c["max_tokens"] = providers.default_max_tokens(gateway.litellm(), c["model"], c["max_tokens"], 400)

    def validate(self, surface) -> list[str]:
        """What `overnight recipes validate` reports: what `run` checks before spending (no model is called)."""
        try:
            self.prepare(surface)
        except OvernightError as exc:
            return [exc.message]
        return []

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        from overnight.core.llm import BudgetExceeded, ModelConfigError

        llm = self.llm
        if llm is None:
            raise OvernightError("The judge metric needs a model gateway; it runs only inside `overnight run`.")
        if not self.rubric:
            self.rubric = grading.read_rubric(self.config["rubric"], self.recipe_dir)
        view = request.view or artifact.read_text(encoding="utf-8")
        deadline = time.monotonic() + request.seconds
        if self.config["mode"] == "pairwise":
            # Against the current best when the loop says which it is; otherwise (a confirmation,
            # a dry run) against the original, whose place on the ladder is 0.
            best, base = request.best_view, request.best_score or 0.0
            if not best:
                best, base = self.original, 0.0
            if view == best:
                return Measurement(base)  # nothing to compare with: it holds its own place
            jobs, finish = self._pairwise(self._items(view), self._items(best), base, llm, request, deadline)
        else:
            jobs, finish = self._scores(self._items(view), llm, request, deadline)
        done = fanout.run_all(jobs, self.config["concurrency"], deadline)
        calls = [c for g in done.results.values() for c in g.calls] + fanout.calls_of(done.error) + done.late
        if isinstance(done.error, (BudgetExceeded, ModelConfigError)):
            raise done.error
        if isinstance(done.error, OvernightError):
            return _account(Measurement.crash(str(done.error).rstrip("."), llm_calls=calls))
        if done.error is not None:
            raise done.error
        if done.timed_out:
            return _account(Measurement.timeout(request.seconds, f"{len(done.results)} of {len(jobs)} judge calls answered in time", llm_calls=calls))
        m = finish([done.results[i] for i in range(len(jobs))])
        m.llm_calls = calls
        return _account(m)

    # -- score: a grade per text, `samples` times ---------------------------------------

    def _scores(self, items: list[Item], llm, request, deadline):
        samples = self.config["samples"]
        pairs = [(item, k) for item in items for k in range(1, samples + 1)]
        jobs = [
            lambda item=item, k=k: grading.ask(
                llm, grading.score_messages(self.rubric, item.text, about=item.about, sample=k if samples > 1 else 0),
                pairwise=False, settings=dict(self._settings(), deadline=deadline), cache=request.cache, timeout=fanout.left(deadline))
            for item, k in pairs
        ]

        bar = self.config.get("pass_grade") or 7.0
        wanted = f"a grade of {_grade(bar)}/10 or more"

        def finish(grades: list[grading.Grade]) -> Measurement:
            examples, lines = [], []
            for n, item in enumerate(items):
                mine = grades[n * samples:(n + 1) * samples]
                mean = sum(g.value for g in mine) / len(mine)
                reasons = _reasons([g.reasons for g in mine])
                score = 1.0 if mean >= bar else (mean - 1) / (bar - 1)
                feedback = f"graded {_grade(mean)}/10" + (f": {reasons}" if reasons else "")
                examples.append(ExampleResult(item.id, item.input, item.text, wanted, score, feedback, "train"))
                lines.append(f"{item.id}: {mean:.1f}/10 {_first_line(reasons)}")
            value = sum(g.value for g in grades) / len(grades)
            return Measurement(value, examples=examples, trace="\n".join(lines))

        return jobs, finish

    # -- pairwise: the candidate against the best, in both orders --------------------------

    def _pairwise(self, mine: list[Item], best: list[Item], base: float, llm, request, deadline):
        if len(mine) != len(best):
            raise OvernightError(f"the candidate has {len(mine)} texts to compare and the best {len(best)}")
        samples = self.config["samples"]
        jobs, layout = [], []
        for n, (item, other) in enumerate(zip(mine, best)):
            for k in range(1, samples + 1):
                for candidate_first in (True, False):
                    a, b = (item.text, other.text) if candidate_first else (other.text, item.text)
                    messages = grading.pair_messages(self.rubric, a, b, about=item.about, sample=k if samples > 1 else 0)
                    jobs.append(lambda messages=messages: grading.ask(
                        llm, messages, pairwise=True, settings=dict(self._settings(), deadline=deadline), cache=request.cache, timeout=fanout.left(deadline)))
                    layout.append((n, candidate_first))
        def finish(grades: list[grading.Grade]) -> Measurement:
            wins: dict[int, list[float]] = {n: [] for n in range(len(mine))}
            lost: dict[int, list[str]] = {n: [] for n in range(len(mine))}
            for (n, candidate_first), g in zip(layout, grades):
                share = g.value if candidate_first else 1.0 - g.value  # the candidate's share of this comparison
                wins[n].append(share)
                if share < 1.0 and g.reasons:
                    # The judge speaks of A and B; say which one was the candidate.
                    lost[n].append(f"(the candidate was version {'A' if candidate_first else 'B'}) {g.reasons}")
            examples, lines = [], []
            for n, item in enumerate(mine):
                share = sum(wins[n]) / len(wins[n])
                reasons = _reasons(lost[n])
                examples.append(ExampleResult(item.id, item.input, item.text, best[n].text, share, reasons, "train"))
                lines.append(f"{item.id}: won {share:.0%} against the best {_first_line(reasons)}")
            total = sum(s for v in wins.values() for s in v) / sum(len(v) for v in wins.values())
            m = Measurement(base + total - 0.5, examples=examples, trace="\n".join(lines))
            m.components = {"win share": total}
            return m

        return jobs, finish

    # -- what is graded ------------------------------------------------------------------

    def _items(self, view: str) -> list[Item]:
        renderings = getattr(self.surface, "renderings", None)
        if renderings is None:
            return [Item("text", "", view)]
        out = []
        for r in renderings(view):
            fields = "\n".join(f"{k}: {v}" for k, v in r.fields.items())
            out.append(Item(f"recipient {r.n}", f"the email to recipient {r.n}, {r.recipient}", r.text, fields))
        return out

    def _settings(self) -> dict:
        c = self.config
        return dict(model=c["model"], api_base=c["api_base"], temperature=c["temperature"], max_tokens=c["max_tokens"] or 400,
                    **c["options"])


def _reasons(texts: list[str]) -> str:
    seen, out = set(), []
    for t in texts:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return "\n---\n".join(out)


def _grade(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return f"- {line[:120]}" if line else ""


def _account(m: Measurement) -> Measurement:
    fresh = [c for c in m.llm_calls if not c.cached]
    m.cost_usd = sum(c.cost_usd for c in fresh)
    m.tokens = sum(c.prompt_tokens + c.completion_tokens for c in fresh)
    return m


@hookimpl
def overnight_register_metrics(register):
    register(JudgeMetric)
