"""The contamination guard: a candidate that copies the examples is refused before it is measured.

Two levels. The loop asks every metric to `screen()` a candidate first: a test metric
registered by this module (loaded through OVERNIGHT_PLUGINS, as a user adds one) shows
that path and what the agent is told. Then the `dataset` metric's own guard, on real
questions from askubuntu.com (tests/data/datasets, CC BY-SA 3.0), against the loopback
model server.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from overnight.core import plugins
from overnight.core.contracts import Agent, Measurement, Metric, Proposal
from overnight.core.hookspecs import hookimpl
from overnight.plugins import contamination
from overnight.plugins.templating import Record
from tests.conftest import write

# -- a metric that screens, and an agent that remembers what it was told -----------------------


class AnswerKeyMetric(Metric):
    """Counts the word "clear" in a file; refuses one that pastes the answer key."""

    name = "answer-key"
    measured: list[str] = []

    def screen(self, view: str) -> str | None:
        return "it pastes the answer key" if "ANSWER KEY" in view else None

    def measure(self, artifact, folder, request):
        text = artifact.read_text()
        AnswerKeyMetric.measured.append(text)
        return Measurement(float(text.count("clear")))


class RecordingAgent(Agent):
    """Proposes the views listed in its `views` option, and keeps every context it was given."""

    name = "recording"
    contexts: list = []

    def propose(self, context):
        RecordingAgent.contexts.append(context)
        views = self.config.get("views", [])
        n = len(RecordingAgent.contexts) - 1
        return Proposal(view=views[n], rationale=f"proposal {n + 1}") if n < len(views) else None


from overnight.core.options import Option  # noqa: E402

RecordingAgent.options = {"views": Option(list, "the views to propose", default=[])}


@hookimpl
def overnight_register_metrics(register):
    register(AnswerKeyMetric)


@hookimpl
def overnight_register_agents(register):
    register(RecordingAgent)


@pytest.fixture
def test_plugins(monkeypatch):
    monkeypatch.setenv("OVERNIGHT_PLUGINS", __name__)
    plugins.registry.cache_clear()
    AnswerKeyMetric.measured, RecordingAgent.contexts = [], []
    yield
    plugins.registry.cache_clear()


def rows(db: Path, sql: str) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def test_the_loop_refuses_a_screened_candidate_unmeasured_and_tells_the_agent_why(workspace, cli, test_plugins):
    views = ["clear\nANSWER KEY: clear clear clear\n", "clear and clear\n", "clear, clear, clear\n"]
    write(workspace / "essay", {"essay.txt": "a clear start\n", "recipe.toml": f"""
        [recipe]
        name = "essay"
        [surface]
        kind = "text"
        path = "essay.txt"
        [metric]
        kind = "answer-key"
        [agent]
        kind = "recording"
        views = {json.dumps(views)}
    """})
    result = cli("run", workspace / "essay", "--yes")
    assert result.exit_code == 0, result.output

    exps = rows(workspace / ".overnight" / "overnight.db", "select seq, status, reason, score from experiments order by seq")
    assert [(e["seq"], e["status"]) for e in exps] == [(0, "baseline"), (1, "guard_failed"), (2, "keep"), (3, "keep")]
    assert exps[1]["reason"] == "it pastes the answer key" and exps[1]["score"] is None
    # Never measured: not during the run, and not at its end either.
    assert not any("ANSWER KEY" in text for text in AnswerKeyMetric.measured)
    # The next proposal's context carries the refusal and its reason in the ledger.
    ledger = RecordingAgent.contexts[1].ledger
    assert [(a.seq, a.status, a.reason) for a in ledger] == [(1, "guard_failed", "it pastes the answer key")]


# -- what counts as copying ---------------------------------------------------------------------


def found(examples: list[tuple[dict, str]]):
    return contamination.needles([(Record(i + 1, f), s) for i, (f, s) in enumerate(examples)], "label", "id")


TICKETS = [
    ({"id": "T1", "text": "The invoice for March was charged twice to my card", "label": "billing"}, "train"),
    ({"id": "T2", "text": "I was billed for a seat we removed last month", "label": "billing"}, "train"),
    ({"id": "T3", "text": "The export button does nothing in the web app", "label": "bug"}, "train"),
    ({"id": "T4", "text": "Exporting a board to PDF freezes the whole page", "label": "bug"}, "train"),
    ({"id": "T5", "text": "Please add a dark theme for the mobile app", "label": "feature request"}, "holdout"),
    ({"id": "T6", "text": "Cannot log in", "label": "a single long answer that appears only once here"}, "train"),
]


def test_labels_and_short_texts_never_count_but_three_train_examples_or_one_holdout_do():
    needles = found(TICKETS)
    # A good prompt names every label, and even quotes a short input: fine.
    prompt = "Route the ticket: billing, bug or feature request.\nTickets like 'cannot log in' are not bugs.\n{{ text }}\n"
    assert contamination.reason(prompt, needles) is None
    # Two worked examples are fair; case and spacing do not hide a copy.
    two = prompt + "THE INVOICE for March was charged   twice to my card -> billing\nThe export button does nothing in the web app -> bug\n"
    assert contamination.reason(two, needles) is None
    three = two + "Exporting a board to PDF freezes the whole page -> bug\n"
    assert contamination.reason(three, needles) == (
        "it contains, verbatim, the text of 3 train examples (T1, T3, T4), more than the 2 allowed: a prompt that "
        "copies the examples scores on them and nowhere else; describe the pattern instead")
    # One holdout example is enough, and it is not named.
    held = prompt + "please add a dark theme for the mobile app\n"
    reason = contamination.reason(held, needles)
    assert reason.startswith("it contains, verbatim, the text of 1 holdout example ") and "T5" not in reason
    # An answer that only one example has is that example's text.
    answers = prompt + "T1 billing\nA single long answer that appears only once here\n" + "\n".join(
        t["text"] for t, _ in TICKETS[1:3])
    assert "3 train examples (T2, T3, T6)" in contamination.reason(answers, needles)


# -- the dataset metric's guard, end to end -------------------------------------------------------

DATASET = Path(__file__).parent / "data" / "datasets" / "askubuntu_intents.jsonl"
# Every fifth question (33 of 162, every intent among them), so each measurement stays quick.
LINES = DATASET.read_text(encoding="utf-8").splitlines()[::5]
QUESTIONS = [json.loads(line) for line in LINES]
INTENT = {r["text"]: r["intent"] for r in QUESTIONS}
LABELS = sorted(set(INTENT.values()))
INSTRUCTION = "Answer with the intent name only"


def task_model(request) -> str:
    """Exact when told to answer with the intent name and the prompt names that intent; chatty otherwise."""
    prompt = request["messages"][-1]["content"]
    found = re.search(r"Question: (.*)", prompt)
    question = found.group(1) if found else prompt.strip()  # a prompt of the input alone
    intent = INTENT[question]
    return intent if INSTRUCTION in prompt and intent in prompt else f"The user asks about {intent.lower()}."


def dataset_recipe(folder: Path, server, proposals: list[str], metric: str = "",
                   prompt: str = "What does this Ubuntu user want?\nQuestion: {{ text }}\n") -> Path:
    lines = "\n".join(json.dumps({"view": v, "rationale": f"prompt {i + 1}"}) for i, v in enumerate(proposals))
    write(folder, {"prompt.j2": prompt,
                   "proposals.jsonl": lines + "\n", "recipe.toml": f"""
        [recipe]
        name = "intents"
        [surface]
        kind = "prompt"
        path = "prompt.j2"
        inputs = ["text"]
        [metric]
        kind = "dataset"
        file = "questions.jsonl"
        expected_field = "intent"
        task_model = "openai/task-model"
        api_base = "{server.url}"
        {metric}
        [agent]
        kind = "scripted"
        file = "proposals.jsonl"
        [budget]
        experiments = 10
    """})
    (folder / "questions.jsonl").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return folder


def splits(folder: Path) -> dict[str, list[str]]:
    from overnight.core import recipe as recipes

    metric = recipes.load(folder).metrics[0]
    built = metric.build(folder)
    out: dict[str, list[str]] = {"train": [], "holdout": []}
    for record, split in built.load():
        out[split].append(record.fields["text"])
    return out


@pytest.fixture
def server(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-contamination-0123456789")
    llm_server.add_rule(lambda r: r.get("model") == "task-model", task_model)
    return llm_server


GOOD = f"What does this Ubuntu user want? One of: {', '.join(LABELS)}. {INSTRUCTION}.\nQuestion: {{{{ text }}}}\n"


def test_the_dataset_metric_refuses_prompts_that_copy_its_examples(workspace, cli, server):
    folder = dataset_recipe(workspace / "intents", server, [])
    split = splits(folder)
    shots = lambda questions: "".join(f"Example: {q} -> {INTENT[q]}\n" for q in questions)
    proposals = [
        GOOD.replace("Question:", shots(split["train"][:3]) + "Question:"),  # three train examples: refused
        GOOD.replace("Question:", shots(split["holdout"][:1]) + "Question:"),  # one holdout example: refused
        GOOD.replace("Question:", shots(split["train"][:2]) + "Question:"),  # two worked examples: fair
        GOOD,  # every label named: fair
    ]
    dataset_recipe(folder, server, proposals)
    asked = lambda: [r["messages"][-1]["content"] for r in server.requests]
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output

    exps = rows(workspace / ".overnight" / "overnight.db", "select seq, status, reason from experiments order by seq")
    assert [e["status"] for e in exps] == ["baseline", "guard_failed", "guard_failed", "keep", "keep"]
    assert exps[1]["reason"].startswith("it contains, verbatim, the text of 3 train examples (")
    assert exps[2]["reason"].startswith("it contains, verbatim, the text of 1 holdout example ")
    # The refused prompts never reached the model.
    assert not any(split["holdout"][0] in prompt and "Example:" in prompt for prompt in asked())
    # The two-shot prompt was measured and kept; the labels-only prompt ties it, and shorter wins the tie.
    assert "shorter view" in exps[4]["reason"]


def test_the_guard_can_be_turned_off(workspace, cli, server):
    folder = dataset_recipe(workspace / "intents", server, [])
    split = splits(folder)
    copied = GOOD.replace("Question:", "".join(f"Example: {q} -> {INTENT[q]}\n" for q in split["train"][:3]) + "Question:")
    dataset_recipe(folder, server, [copied], metric="contamination = false")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = rows(workspace / ".overnight" / "overnight.db", "select status from experiments order by seq")
    assert [e["status"] for e in exps] == ["baseline", "keep"]


def test_check_on_a_dataset_recipe_counts_the_examples_and_tries_the_answers_alone(workspace, cli, server):
    # A prompt that knows two of the intents: some right, room to grow.
    prompt = f"What does this Ubuntu user want? Maybe Make Update or Shutdown Computer. {INSTRUCTION}.\nQuestion: {{{{ text }}}}\n"
    folder = dataset_recipe(workspace / "intents", server, [], prompt=prompt)
    result = cli("check", folder, "--yes")
    out = result.output
    assert "Examples      23 train, 10 holdout" in out, out
    # The prompt surface refuses a view that drops its input: the answers alone cannot game it.
    assert "Degenerate    expected outputs only: is refused by the surface (it drops the declared input {{ text }})" in out
    assert "Degenerate    inputs only: scores 0, worse than the baseline, as it should" in out
    assert "Degenerate    repeated twice: scores" in out and "harmless, as a longer view never wins a tie" in out
    assert "tokens each" in out and "$0.0000" in out
    assert "Verdict: ready" in out
    assert result.exit_code == 0


def test_check_says_when_there_is_no_holdout(workspace, cli, server):
    prompt = f"What does this Ubuntu user want? Maybe Make Update or Shutdown Computer. {INSTRUCTION}.\nQuestion: {{{{ text }}}}\n"
    folder = dataset_recipe(workspace / "intents", server, [], prompt=prompt, metric="holdout = 0")
    result = cli("check", folder, "--yes")
    assert result.exit_code == 1, result.output
    assert "Examples      33 train, 0 holdout" in result.output
    assert "Measuring the baseline on holdout failed (crash: the holdout split has no examples" in result.output
    assert "Add holdout examples (a holdout share or file in [metric])" in result.output
