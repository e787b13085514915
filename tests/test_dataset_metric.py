"""The `dataset` metric on real questions from askubuntu.com (tests/data/datasets, CC BY-SA 3.0).

The task model is the loopback server, reached through litellm's real client:
it answers a question's intent exactly only when the prompt asks for the intent
name alone, so a better prompt really scores better. Each example's answer,
expected value, score and reason are recorded; the split into train and holdout
is seeded; an unchanged prompt is measured again without a single call.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import threading
from pathlib import Path

import pytest

from overnight.core import recipe as recipes
from overnight.core.contracts import MeasureRequest
from overnight.core.executor import LocalExecutor
from overnight.core.llm import litellm
from overnight.core.runner import build
from overnight.core.store import Store
from overnight.plugins import scoring
from overnight.plugins.dataset import DatasetMetric
from tests.conftest import write

DATASET = Path(__file__).parent / "data" / "datasets" / "askubuntu_intents.jsonl"
ROWS = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()]
INTENT = {r["text"]: r["intent"] for r in ROWS}
SIXTY = "\n".join(DATASET.read_text(encoding="utf-8").splitlines()[::2][:60]) + "\n"  # a faster slice, every intent in it
INSTRUCTION = "Answer with the intent name only"
WEAK = "What does this Ubuntu user want?\nQuestion: {{ text }}\n"
GOOD = ("What does this Ubuntu user want? One of: Software Recommendation, Make Update, Shutdown Computer, "
        f"Setup Printer, None. {INSTRUCTION}.\nQuestion: {{{{ text }}}}\n")


def task_model(request) -> str:
    """A model that is exact only when told the labels; otherwise it chats."""
    prompt = request["messages"][-1]["content"]
    question = re.search(r"Question: (.*)", prompt).group(1)
    intent = INTENT[question]
    if "Reply as JSON" in prompt:
        return f'```json\n{json.dumps({"intent": intent})}\n```'
    if INSTRUCTION in prompt:
        return intent
    return f"The user is asking about {intent.lower()}."


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()  # the slow import, paid once for the module


@pytest.fixture(autouse=True)
def _no_call_left_running():
    """A measurement that ends early (timeout, error) leaves its calls to end by their own
    timeout; wait for them here so none outlives its test."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("overnight-llm"):
            thread.join(15)


@pytest.fixture
def server(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dataset-0123456789")
    llm_server.add_rule(lambda r: r.get("model") == "task-model", task_model)
    return llm_server


def recipe(folder: Path, server, *, prompt: str = WEAK, metric: str = "", data: str | None = None,
           data_name: str = "questions.jsonl") -> Path:
    write(folder, {"prompt.j2": prompt, "proposals.jsonl": "", "recipe.toml": f"""
        [recipe]
        name = "intents"

        [surface]
        kind = "prompt"
        path = "prompt.j2"
        inputs = ["text"]

        [metric]
        kind = "dataset"
        file = "{data_name}"
        expected_field = "intent"
        task_model = "openai/task-model"
        api_base = "{server.url if server else 'http://127.0.0.1:9/v1'}"
        {metric}

        [agent]
        kind = "scripted"
        file = "proposals.jsonl"
    """})
    if data is None:
        shutil.copy(DATASET, folder / data_name)
    else:
        (folder / data_name).write_text(data, encoding="utf-8")
    return folder


def setup_of(folder: Path):
    from overnight.sharing.trust import hosts

    recipe = recipes.load(folder)
    return build(recipe, Store(folder.parent / "overnight.db"), hosts=hosts(recipe))  # as trusting it would


def measure(setup, view: str | None = None, **request):
    view = setup.surface.read() if view is None else view
    return LocalExecutor(setup.surface, setup.objective).measure(view, MeasureRequest(60, **request)).measurement


def metric_of(setup) -> DatasetMetric:
    return setup.objective.metrics[0].metric


# -- the split ------------------------------------------------------------------------


def test_the_split_is_seeded_and_holds_out_thirty_percent(workspace):
    folder = recipe(workspace / "r", None)
    splits = lambda seed: [s for _, s in DatasetMetric(
        {**_defaults(), "file": "questions.jsonl", "expected_field": "intent", "task_model": "openai/x", "seed": seed}, folder).load()]
    first = splits(0)
    assert first.count("holdout") == round(162 * 0.3) == 49
    assert splits(0) == first  # the same file and seed: the same holdout, run after run
    assert splits(1) != first


def _defaults() -> dict:
    return {k: o.default for k, o in DatasetMetric.options.items()}


# -- measuring ---------------------------------------------------------------------------


def test_a_weak_prompt_scores_low_and_says_why_each_example_failed(workspace, server):
    setup = setup_of(recipe(workspace / "r", server, data=SIXTY))
    m = measure(setup)
    assert m.ok and m.value == 0.0
    assert len(m.examples) == 60 - 18
    assert {e.split for e in m.examples} == {"train"}
    e = m.examples[0]
    assert e.input in INTENT and e.expected == INTENT[e.input]
    assert e.output == f"The user is asking about {e.expected.lower()}."
    assert e.feedback == f"the answer is {e.output!r}, expected exactly {e.expected!r}"
    assert len(m.llm_calls) == 42 and {c.role for c in m.llm_calls} == {"task"}
    assert m.tokens == sum(c.prompt_tokens + c.completion_tokens for c in m.llm_calls) > 0
    assert "train: 0 of 42 examples fully right" in m.trace
    assert server.count == 42


def test_a_prompt_that_lists_the_labels_scores_full_marks_on_both_splits(workspace, server):
    setup = setup_of(recipe(workspace / "r", server, prompt=GOOD, data=SIXTY))
    m = measure(setup)
    assert m.value == 1.0 and all(e.feedback == "" for e in m.examples)
    held = measure(setup, split="holdout")
    assert held.value == 1.0 and len(held.examples) == 18 and {e.split for e in held.examples} == {"holdout"}
    assert not {e.id for e in held.examples} & {e.id for e in m.examples}


def test_measuring_an_unchanged_prompt_again_makes_no_call(workspace, server):
    setup = setup_of(recipe(workspace / "r", server, prompt=GOOD, data=SIXTY))
    first = measure(setup)
    calls = server.count
    again = measure(setup)
    assert server.count == calls
    assert again.value == first.value and all(c.cached for c in again.llm_calls)
    assert again.tokens == 0 and again.cost_usd == 0
    fresh = measure(setup, cache=False)  # a re-measurement that estimates noise asks the model again
    assert server.count == 2 * calls and not any(c.cached for c in fresh.llm_calls)


def test_the_metric_is_deterministic_only_at_temperature_zero(workspace):
    folder = recipe(workspace / "r", None)
    base = {**_defaults(), "file": "questions.jsonl", "task_model": "openai/x"}
    assert DatasetMetric(dict(base), folder).deterministic is True
    assert DatasetMetric({**base, "temperature": 0.7}, folder).deterministic is False
    assert DatasetMetric({**base, "scorer": "judge", "rubric": "be right", "judge_temperature": 1.0}, folder).deterministic is False


def test_a_truncated_answer_says_it_was_cut_off(workspace, server):
    setup = setup_of(recipe(workspace / "r", server, metric="max_tokens = 3\nholdout = 0.9"))
    m = measure(setup)
    e = m.examples[0]
    assert e.feedback.endswith("; the answer was cut off at max_tokens = 3")


def test_csv_examples_and_renamed_fields(workspace, server):
    out = io.StringIO()
    csv.writer(out).writerows([("question", "label")] + [(r["text"], r["intent"]) for r in ROWS[:20]])
    folder = recipe(workspace / "r", server, prompt=GOOD, data=out.getvalue(), data_name="q.csv",
                    metric='fields = { text = "question" }\nholdout = 0.25')
    (folder / "recipe.toml").write_text((folder / "recipe.toml").read_text().replace('expected_field = "intent"', 'expected_field = "label"'))
    m = measure(setup_of(folder))
    assert m.value == 1.0 and len(m.examples) == 15
    assert m.examples[0].input in INTENT


def test_a_text_prompt_and_the_json_field_scorer(workspace, server):
    prompt = 'Reply as JSON, like {"intent": "None"}.\nQuestion: {text}\n'
    folder = recipe(workspace / "r", server, prompt=prompt, data=SIXTY, metric='scorer = "json_field"\njson_field = "intent"')
    toml = (folder / "recipe.toml").read_text().replace('inputs = ["text"]', 'inputs = ["text"]\nformat = "text"')
    (folder / "recipe.toml").write_text(toml)
    m = measure(setup_of(folder))
    assert m.value == 1.0 and len(m.examples) == 42
    assert any(f"Question: {m.examples[0].input}\n" in p for p in server.prompts)
    assert all('{"intent": "None"}' in p and "{text}" not in p for p in server.prompts)


def test_the_judge_scorer_grades_each_answer_against_the_rubric(workspace, server):
    def judge(request):
        text = request["messages"][-1]["content"]
        graded = re.search(r"<<<\n(.*)\n>>>", text, re.DOTALL).group(1)
        return "Right intent, stated plainly.\nSCORE: 10" if graded in INTENT.values() else "Chatty: the router needs the label alone.\nSCORE: 4"

    server.add_rule(lambda r: r.get("model") == "judge-model", judge)
    setup = setup_of(recipe(workspace / "r", server, metric='\n'.join([
        'scorer = "judge"', 'rubric = "The answer must be the intent label alone."',
        'judge_model = "openai/judge-model"', 'holdout = 0.9'])))
    m = measure(setup)
    assert len(m.examples) == 16
    assert all(abs(e.score - 3 / 9) < 1e-9 for e in m.examples)
    assert m.examples[0].feedback == "Chatty: the router needs the label alone."
    assert abs(m.value - 1 / 3) < 1e-9
    assert sorted({c.role for c in m.llm_calls}) == ["judge", "task"] and len(m.llm_calls) == 32


# -- scorers ------------------------------------------------------------------------------


def test_scorers():
    s = scoring.Settings()
    assert scoring.score("exact", "  Make   update ", "Make Update", s) == (1.0, "")
    assert scoring.score("exact", "Make update", "Make Update", scoring.Settings(case_sensitive=True))[0] == 0.0
    assert scoring.score("contains", "Clearly: MAKE UPDATE.", "Make Update", s) == (1.0, "")
    assert scoring.score("contains", "printer", "Make Update", s) == (0.0, "the answer does not contain 'Make Update'")
    assert scoring.score("regex", "Total: 42 apples", r"\b42\b", s) == (1.0, "")
    extract = scoring.Settings(pattern=re.compile(r"label:\s*(\w+)", re.I))
    assert scoring.score("regex", "Label: bug", "bug", extract) == (1.0, "")
    assert scoring.score("regex", "Label: billing", "bug", extract) == (0.0, "the answer gives 'billing', expected 'bug'")
    field = scoring.Settings(json_field="result.label")
    assert scoring.score("json_field", 'Here:\n```json\n{"result": {"label": "Bug"}}\n```', "bug", field) == (1.0, "")
    assert scoring.score("json_field", '{"result": {}}', "bug", field)[1].startswith("the JSON answer has no field 'result.label'")
    assert scoring.score("json_field", "bug", "bug", field)[1] == "the answer is not JSON: 'bug'"
    near = scoring.Settings(tolerance=0.5)
    assert scoring.score("numeric", "The total is 1,204.3 dollars", "1204", near) == (1.0, "")
    assert scoring.score("numeric", "about 1206", "1204", near) == (0.0, "the answer gives 1206, expected 1204 (off by 2; tolerance 0.5)")
    assert scoring.score("numeric", "no idea", "3", near) == (0.0, "no number in the answer: 'no idea'")


# -- bad input ----------------------------------------------------------------------------


def test_a_malformed_row_names_file_and_line(cli, workspace):
    lines = DATASET.read_text().splitlines()
    lines[2] = lines[2][:-1]  # a JSON object cut short
    folder = recipe(workspace / "r", None, data="\n".join(lines) + "\n")
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert f"Error: {folder / 'questions.jsonl'}:3: this line is not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_a_missing_examples_file_is_named(cli, workspace):
    folder = recipe(workspace / "r", None)
    (folder / "questions.jsonl").unlink()
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert f"Error: The examples file {folder / 'questions.jsonl'} does not exist." in result.output


def test_a_csv_row_with_too_many_values_names_file_and_line(workspace):
    folder = recipe(workspace / "r", None, data="text,intent\nhello,None\nprint,Setup Printer,extra\n", data_name="q.csv")
    m = DatasetMetric({**_defaults(), "file": "q.csv", "expected_field": "intent", "task_model": "openai/x"}, folder)
    with pytest.raises(Exception) as err:
        m.load()
    assert str(err.value) == f"{folder / 'q.csv'}:3: this row has 3 values but the header has 2 columns."


def test_a_row_without_the_expected_field_names_file_and_line(cli, workspace):
    data = "\n".join(DATASET.read_text().splitlines()[:10] + ['{"text": "How do I print?"}']) + "\n"
    folder = recipe(workspace / "r", None, data=data)
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert (f"{folder / 'questions.jsonl'}:11: this example has no field 'intent' (expected_field); "
            "its fields are: text.") in result.output


def test_a_prompt_variable_missing_from_the_examples_names_file_and_line(cli, workspace):
    folder = recipe(workspace / "r", None, prompt="Q: {{ question }}\n")
    (folder / "recipe.toml").write_text((folder / "recipe.toml").read_text().replace('inputs = ["text"]', 'inputs = ["question"]'))
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert f"{folder / 'questions.jsonl'}:1: this example has no field 'question', which the prompt uses as {{{{ question }}}}" in result.output


def test_an_unknown_scorer_is_a_recipe_error_listing_the_scorers(cli, workspace):
    folder = recipe(workspace / "r", None, metric='scorer = "fuzzy"')
    result = cli("run", folder, "--yes")
    assert result.exit_code == 2
    assert ("[metric] scorer: 'scorer' must be one of 'exact', 'contains', 'regex', 'json_field', 'numeric', "
            "'judge', not 'fuzzy'.") in result.output
    assert "Traceback" not in result.output


def test_a_server_that_keeps_failing_makes_the_measurement_a_crash(workspace, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dataset-0123456789")
    llm_server.add_rule(None, 500)
    setup = setup_of(recipe(workspace / "r", llm_server, metric="concurrency = 1\nholdout = 0.9"))
    setup.llm.backoff = 0.01
    m = measure(setup)
    assert m.status == "crash"
    assert "failed (500) for 'openai/task-model' after 3 tries" in m.reason
    assert m.llm_calls and m.llm_calls[0].error


def test_a_slow_server_makes_the_measurement_a_timeout(workspace, llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dataset-0123456789")
    llm_server.add_rule(None, "Make Update", delay=3)
    setup = setup_of(recipe(workspace / "r", llm_server, metric="holdout = 0.9"))
    setup.llm.attempts = 1  # the calls left running end at their own 1 s timeout, not after retries
    view = setup.surface.read()
    outcome = LocalExecutor(setup.surface, setup.objective).measure(view, MeasureRequest(0.5))
    assert outcome.measurement.status == "timeout"
    assert outcome.measurement.reason == "took longer than 0.5 s"
