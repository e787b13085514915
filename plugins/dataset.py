"""Metric `dataset`: the task model answers every example through the candidate prompt; each answer is scored.

Examples come from a JSONL or CSV file. Each example's fields are the prompt's
variables (renamed with `fields` when the names differ); `expected_field` holds
the answer to score against. The examples are split once, by `seed`, into
train and holdout (`holdout`, 30% by default): a run's experiments see train
only, and the loop measures the best candidate on holdout at the end, so the
reported gain is checked on examples no proposal was shaped by.

The value is the mean score (0 to 1). Each example's result (input, answer,
expected, score, why it fell short) is what the agent reads to improve the prompt.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from overnight.core.contracts import ExampleResult, LLMCall, Measurement, MeasureRequest, Metric
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option

from . import fanout, grading, scoring, templating

FAILING_IN_TRACE = 20


class DatasetMetric(Metric):
    name = "dataset"
    summary = "Runs the prompt through a task model on each example of a JSONL/CSV file and scores the answers."
    uses_llm = True
    has_examples = True
    reads = "file"  # the materialized prompt alone
    options = {
        "file": Option(str, "the examples: a .jsonl or .csv file, one example a row", required=True),
        "expected_field": Option(str, "the field holding the expected answer", default="expected"),
        "input_field": Option(str, "the field shown as the example's input (default: the fields the prompt uses)", default=None),
        "fields": Option(dict, "prompt variable -> example field, when their names differ", default={}),
        "id_field": Option(str, "a field naming each example (default: its line)", default="id"),
        "scorer": Option(str, "how an answer is scored", default="exact", choices=scoring.SCORERS),
        "case_sensitive": Option(bool, "compare text with case (exact, contains, regex, json_field)", default=False),
        "pattern": Option(str, "regex and numeric: a regex whose first group is the part of the answer to compare", default=None),
        "json_field": Option(str, "json_field: the key of the answer's JSON to compare (dots for nesting)", default=None),
        "tolerance": Option(float, "numeric: the largest difference still counted right", default=0.0, min=0),
        "task_model": Option(str, "the model that answers, in litellm's naming (e.g. openai/gpt-4o-mini)", required=True),
        "api_base": Option(str, "the task model's server, for Ollama or any OpenAI-compatible server", default=None),
        "temperature": Option(float, "the task model's temperature; 0 makes a measurement repeatable", default=0.0, min=0),
        "max_tokens": Option(int, "the longest answer, in tokens (default 256; 16000 for a model that reasons)", default=None, min=1),
        "price": Option(dict, "dollars per million tokens, { input = 1.0, output = 5.0 }, for a model litellm has no price for", default=None),
        "judge_price": Option(dict, "judge: its price, when the judge model differs and litellm has none", default=None),
        "options": Option(dict, "Ollama model options such as { num_ctx = 8192 } (ollama_chat/ models only)", default={}),
        "system": Option(str, "a fixed system message sent before the prompt", default=None),
        "concurrency": Option(int, "examples answered at once", default=8, min=1, max=256),
        "holdout": Option(float, "the share of examples kept out of the agent's sight", default=0.3, min=0, max=0.9),
        "seed": Option(int, "the seed of the train/holdout split", default=0),
        "rubric": Option(str, "judge: the rubric, or a file holding it", default=None),
        "judge_model": Option(str, "judge: the model that grades (default: the task model)", default=None),
        "judge_api_base": Option(str, "judge: its server (default: the task model's api_base)", default=None),
        "judge_temperature": Option(float, "judge: its temperature", default=0.0, min=0),
        "contamination": Option(bool, "refuse, unmeasured, a prompt that copies more than two train examples or any holdout one", default=True),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        c = self.config
        self.deterministic = c["temperature"] == 0 and (c["scorer"] != "judge" or c["judge_temperature"] == 0)
        pattern = None
        if c["pattern"]:
            try:
                pattern = re.compile(c["pattern"], 0 if c["case_sensitive"] else re.IGNORECASE)
            except re.error as exc:
                raise OvernightError(f"The dataset metric's pattern {c['pattern']!r} is not a valid regular expression: {exc}.") from None
        if c["scorer"] == "json_field" and not c["json_field"]:
            raise OvernightError("The dataset metric's scorer 'json_field' needs json_field = \"...\" (the key of the answer's JSON to compare).")
        if c["scorer"] == "judge" and not c["rubric"]:
            raise OvernightError("The dataset metric's scorer 'judge' needs rubric = \"...\" (its text, or a file such as rubric.md).")
        self.settings = scoring.Settings(c["case_sensitive"], pattern, c["json_field"] or "", c["tolerance"])
        self.format = "jinja"
        self.examples: list[tuple[templating.Record, str]] | None = None  # (row, split)
        self.rubric = ""

    # -- before the run ---------------------------------------------------------------

    def describe(self) -> str:
        return (f"mean '{self.config['scorer']}' score (0 to 1) of {self.config['task_model']}'s answers "
                f"to the examples of {self.config['file']} ({self.goal})")

    def prepare(self, surface) -> None:
        self.format = getattr(surface, "template_format", "jinja")
        self.load()
        if self.config["scorer"] == "judge":
            self.rubric = grading.read_rubric(self.config["rubric"], self.recipe_dir)
        self._check_prompt(surface.read(), getattr(surface, "inputs", None))
        if self.llm is not None:
            from overnight.core import llm as gateway, providers

            c = self.config
            providers.check_options(c["task_model"], c["options"])
            self.llm.check_model(c["task_model"], c["api_base"], price=c["price"], where="[metric]")
            c["max_tokens"] = providers.default_max_tokens(gateway.litellm(), c["task_model"], c["max_tokens"], 256)
            if c["scorer"] == "judge":
                self.llm.check_model(*self._judge_model(), price=c["judge_price"] or (
                    c["price"] if self._judge_model()[0] == c["task_model"] else None), where="[metric]", key="judge_price")

    def load(self) -> list[tuple[templating.Record, str]]:
        """Reads the examples and splits them; every malformed row is named by file and line."""
        if self.examples is not None:
            return self.examples
        path = self.path(self.config["file"])
        records = templating.read_records(path, "examples")
        expected = self.config["expected_field"]
        for r in records:
            if expected not in r.fields:
                raise OvernightError(
                    f"{path}:{r.line}: this example has no field {expected!r} (expected_field); "
                    f"its fields are: {', '.join(r.fields) or 'none'}.")
        self.examples = list(zip(records, _split(len(records), self.config["holdout"], self.config["seed"])))
        return self.examples

    def _check_prompt(self, template: str, inputs: list[str] | None) -> None:
        """Every input the prompt reads must be a field of every example."""
        if self.format == "jinja" and templating.parse_problem(template):
            return  # the surface reports its own template
        # A text prompt's other braces may be literal text; its declared inputs are not.
        names = sorted(inputs) if inputs is not None else sorted(templating.variables(template, self.format))
        path = self.path(self.config["file"])
        for record, _ in self.examples:
            values = self._values(record)
            missing = [n for n in names if n not in values]
            if missing:
                name = missing[0]
                raise OvernightError(
                    f"{path}:{record.line}: this example has no field {self.config['fields'].get(name, name)!r}, "
                    f"which the prompt uses as {templating.placeholder(name, self.format)}; "
                    f"its fields are: {', '.join(record.fields)}.")

    def screen(self, view: str) -> str | None:
        # The contamination guard (plugins/contamination.py says what counts as copying).
        if not self.config["contamination"]:
            return None
        from . import contamination

        if getattr(self, "_needles", None) is None:
            self._needles = contamination.needles(self.load(), self.config["expected_field"], self.config["id_field"])
        return contamination.reason(view, self._needles)

    def degenerate(self, view: str) -> dict[str, str]:
        # A prompt made only of the train answers: it must not score as well as a real prompt.
        answers = [templating.field_text(r.fields.get(self.config["expected_field"])) for r, split in self.load() if split == "train"]
        return {"expected outputs only": "\n".join(answers) + "\n"}

    def _judge_model(self) -> tuple[str, str | None]:
        c = self.config
        return c["judge_model"] or c["task_model"], c["judge_api_base"] or c["api_base"]

    # -- one measurement ----------------------------------------------------------------

    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        from overnight.core.llm import BudgetExceeded, ModelConfigError

        llm = self.llm
        if llm is None:
            raise OvernightError("The dataset metric needs a model gateway; it runs only inside `overnight run`.")
        template = artifact.read_text(encoding="utf-8")
        split = request.split
        chosen = [(r, s) for r, s in self.load() if s == split]
        if not chosen:
            return Measurement.crash(f"the {split} split has no examples ({len(self.examples)} in all, holdout = {self.config['holdout']:g})")
        if request.examples is not None:  # a screening minibatch
            wanted = set(request.examples)
            chosen = [(r, s) for r, s in chosen if self._id(r) in wanted]
            if not chosen:
                return Measurement.crash(f"none of the examples asked for ({', '.join(sorted(wanted)[:5])}) is in the {split} split")
        shown = sorted(templating.variables(template, self.format)) if not self.config["input_field"] else []
        deadline = time.monotonic() + request.seconds
        llm.expect(len(chosen))
        jobs = [lambda r=r: self._example(r, split, template, shown, llm, request, deadline) for r, _ in chosen]
        done = fanout.run_all(jobs, self.config["concurrency"], deadline)
        calls = [c for _, cs in done.results.values() for c in cs] + fanout.calls_of(done.error) + done.late
        if isinstance(done.error, (BudgetExceeded, ModelConfigError)):
            raise done.error  # no measurement can be made: the run must stop
        if isinstance(done.error, (OvernightError, templating.TemplateProblem)):
            return self._account(Measurement.crash(str(done.error).rstrip("."), llm_calls=calls))
        if done.error is not None:
            raise done.error
        if done.timed_out:
            return self._account(Measurement.timeout(
                request.seconds, f"{len(done.results)} of {len(chosen)} examples answered in time", llm_calls=calls))
        examples = [done.results[i][0] for i in range(len(chosen))]
        value = sum(e.score for e in examples) / len(examples)
        return self._account(Measurement(value, examples=examples, trace=_trace(examples, split), llm_calls=calls))

    def _example(self, record, split, template, shown, llm, request, deadline) -> tuple[ExampleResult, list[LLMCall]]:
        c = self.config
        values = self._values(record)
        try:
            prompt = templating.render(template, values, self.format)
        except templating.TemplateProblem as exc:
            raise templating.TemplateProblem(f"the prompt cannot be rendered for the example at line {record.line}: {exc}") from None
        messages = ([{"role": "system", "content": c["system"]}] if c["system"] else []) + [{"role": "user", "content": prompt}]
        reply = llm.complete(role="task", model=c["task_model"], messages=messages, api_base=c["api_base"],
                             temperature=c["temperature"], max_tokens=c["max_tokens"] or 256, cache=request.cache,
                             timeout=fanout.left(deadline), deadline=deadline, **c["options"])
        calls = [reply.call]
        output = reply.text or ""
        expected = templating.field_text(record.fields[c["expected_field"]])
        if c["scorer"] == "judge":
            model, api_base = self._judge_model()
            try:
                grade = grading.ask(llm, grading.score_messages(self.rubric, output, expected=expected, task=prompt),
                                    pairwise=False, cache=request.cache, timeout=fanout.left(deadline),
                                    settings=dict(model=model, api_base=api_base, temperature=c["judge_temperature"], max_tokens=400,
                                                  deadline=deadline))
            except grading.NoGrade as exc:
                exc.calls = calls + exc.calls
                raise
            calls += grade.calls
            score, feedback = (grade.value - 1) / 9, grade.reasons if grade.value < 10 else ""
        else:
            score, feedback = scoring.score(c["scorer"], output, expected, self.settings)
        if reply.finish_reason == "length":
            feedback = (feedback + "; " if feedback else "") + f"the answer was cut off at max_tokens = {c['max_tokens']}"
        result = ExampleResult(
            id=self._id(record),
            input=self._input(record, shown), output=output, expected=expected,
            score=score, feedback=feedback, split=split,
        )
        return result, calls

    def _id(self, record: templating.Record) -> str:
        ident = record.fields.get(self.config["id_field"])
        return str(ident) if ident not in (None, "") else f"line {record.line}"

    def _values(self, record: templating.Record) -> dict:
        values = {k: templating.field_text(v) if isinstance(v, (dict, list)) or v is None else v for k, v in record.fields.items()}
        for variable, field_name in self.config["fields"].items():
            if field_name in record.fields:
                values[variable] = values[field_name]
        if self.config["input_field"] and "input" not in values and self.config["input_field"] in values:
            values["input"] = values[self.config["input_field"]]
        return values

    def _input(self, record: templating.Record, shown: list[str]) -> str:
        values = self._values(record)
        if self.config["input_field"]:
            return templating.field_text(values.get(self.config["input_field"]))
        shown = [n for n in shown if n in values] or [k for k in record.fields if k != self.config["expected_field"]]
        if len(shown) == 1:
            return templating.field_text(values[shown[0]])
        return "\n".join(f"{n}: {templating.field_text(values[n])}" for n in shown)

    @staticmethod
    def _account(m: Measurement) -> Measurement:
        fresh = [c for c in m.llm_calls if not c.cached]
        m.cost_usd = sum(c.cost_usd for c in fresh)
        m.tokens = sum(c.prompt_tokens + c.completion_tokens for c in fresh)
        return m


def _split(n: int, holdout: float, seed: int) -> list[str]:
    """A seeded split: the same file and seed give the same holdout, run after run."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    k = round(n * holdout)
    if holdout > 0 and n >= 2:
        k = min(max(k, 1), n - 1)
    held = set(order[:k])
    return ["holdout" if i in held else "train" for i in range(n)]


def _trace(examples: list[ExampleResult], split: str) -> str:
    right = sum(1 for e in examples if e.score >= 1.0)
    lines = [f"{split}: {right} of {len(examples)} examples fully right; mean score {sum(e.score for e in examples) / len(examples):.3f}"]
    failing = [e for e in examples if e.score < 1.0]
    for e in failing[:FAILING_IN_TRACE]:
        lines.append(f"- {e.id} ({e.score:.2f}): {e.feedback or 'scored below 1'}")
    if len(failing) > FAILING_IN_TRACE:
        lines.append(f"- ... and {len(failing) - FAILING_IN_TRACE} more")
    return "\n".join(lines)


@hookimpl
def overnight_register_metrics(register):
    register(DatasetMetric)
