"""The `judge` metric: a model grades against a rubric, and its reasons become the feedback.

The judge is the loopback server, reached through litellm's real client, scripted
to grade by what the text says. Each recipient's email is judged on its own; a
reply with no score is asked again once, then is a crash that says why; pairwise
judging asks both orders, so a judge that always prefers the first version
cancels out.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from overnight.core import recipe as recipes
from overnight.core.contracts import MeasureRequest
from overnight.core.executor import LocalExecutor
from overnight.core.llm import litellm
from overnight.core.runner import build
from overnight.core.store import Store
from tests.conftest import write

LETTER = "Subject: Tallyboard for {{ company }}\nHi {{ first_name }},\n\nWe make boards for teams like yours.\n\nBest,\nSam\n"
PEOPLE = "first_name,company,email\nAda,Analytical Engines,ada@example.com\nGrace,Cobol Works,grace@example.org\nLinus,Kernel Co,linus@example.net\n"
RUBRIC = "- It names the recipient's company.\n- It ends with one clear question.\n"


@pytest.fixture(scope="module", autouse=True)
def _litellm_once():
    litellm()


@pytest.fixture(autouse=True)
def _no_call_left_running():
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("overnight-llm"):
            thread.join(15)


@pytest.fixture
def server(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-judge-0123456789")
    return llm_server


def graded(request) -> str:
    """The text the judge was asked to grade."""
    return re.search(r"<<<\n(.*?)\n>>>", request["messages"][1]["content"], re.DOTALL).group(1)


def recipe(folder: Path, server, *, surface: str = "email", metric: str = "", files: dict | None = None,
           agent: str = 'kind = "scripted"\nfile = "proposals.jsonl"', budget: str = "experiments = 5") -> Path:
    surfaces = {
        "email": 'kind = "email"\npath = "letter.txt"\nrecipients = "people.csv"',
        "text": 'kind = "text"\npath = "letter.txt"',
    }
    return write(folder, {
        "letter.txt": LETTER, "people.csv": PEOPLE, "rubric.md": RUBRIC, "proposals.jsonl": "",
        **(files or {}),
        "recipe.toml": f"""
[recipe]
name = "letters"

[surface]
{surfaces[surface]}

[metric]
kind = "judge"
rubric = "rubric.md"
model = "openai/judge-model"
api_base = "{server.url}"
{metric}

[agent]
{agent}

[budget]
{budget}
""",
    })


def setup_of(folder: Path):
    from overnight.sharing.trust import hosts

    recipe = recipes.load(folder)
    return build(recipe, Store(folder.parent / "overnight.db"), hosts=hosts(recipe))  # as trusting it would


def measure(setup, view: str | None = None, **request):
    view = setup.surface.read() if view is None else view
    return LocalExecutor(setup.surface, setup.objective).measure(view, MeasureRequest(60, **request)).measurement


# -- score ----------------------------------------------------------------------------


def test_a_text_is_graded_and_the_reasons_become_feedback(workspace, server):
    server.add_rule(None, "It names no company in the body.\nIt asks nothing.\nSCORE: 4")
    setup = setup_of(recipe(workspace / "r", server, surface="text"))
    m = measure(setup)
    assert m.ok and m.value == 4.0
    [e] = m.examples
    assert e.id == "text" and e.output == LETTER
    assert abs(e.score - 3 / 6) < 1e-9  # half way from 1 to the pass grade, 7
    assert e.expected == "a grade of 7/10 or more"
    assert e.feedback == "graded 4/10: It names no company in the body.\nIt asks nothing."
    assert len(m.llm_calls) == 1 and m.llm_calls[0].role == "judge"
    prompt = server.prompts[0]
    assert RUBRIC.strip() in prompt and "Hi {{ first_name }}" in prompt


def test_each_recipient_is_judged_on_their_own_email(workspace, server):
    scores = {"Ada": 8, "Grace": 5, "Linus": 2}
    server.add_rule(None, lambda r: f"Judged the email to {graded(r).split()[6]}.\nSCORE: {scores[graded(r).split()[6].rstrip(',')]}")
    setup = setup_of(recipe(workspace / "r", server))
    m = measure(setup)
    assert m.value == 5.0
    assert [e.id for e in m.examples] == ["recipient 1", "recipient 2", "recipient 3"]
    assert [e.score for e in m.examples] == [1.0, pytest.approx(4 / 6), pytest.approx(1 / 6)]  # 8 passes, 5 and 2 do not
    assert m.examples[1].output.startswith("Subject: Tallyboard for Cobol Works\n\nHi Grace,")
    assert m.examples[1].feedback == "graded 5/10: Judged the email to Grace,."
    assert "company: Cobol Works" in m.examples[1].input
    assert any("the email to recipient 3, linus@example.net" in p for p in server.prompts)


@pytest.mark.parametrize("pass_grade, passed", [(None, 8), (9, 0)])
def test_an_example_passes_at_the_pass_grade_and_shows_its_grade_and_reason(cli, workspace, server, pass_grade, passed):
    # Eight recipients graded 8, two graded 5: "8 of 10 passed" at the default pass grade of 7.
    people = "first_name,company,email\n" + "".join(f"P{i},Co {i},p{i}@example.com\n" for i in range(1, 11))
    server.add_rule(None, lambda r: "Names the company.\nSCORE: 8" if re.search(r"Hi P([1-8]),", graded(r))
                    else "It asks two questions.\nSCORE: 5")
    metric = f"pass_grade = {pass_grade}" if pass_grade else ""
    folder = recipe(workspace / "r", server, metric=metric, files={"people.csv": people})
    assert cli("run", folder, "--yes").exit_code == 0

    shown = cli("show", "1:0")

    assert f"examples   {passed} of 10 passed" in shown.output
    bar = pass_grade or 7
    assert f"expected 'a grade of {bar}/10 or more' graded 5/10: It asks two questions." in shown.output
    assert "expected ''" not in shown.output
    if pass_grade:
        assert f"expected 'a grade of {bar}/10 or more' graded 8/10: Names the company." in shown.output


def test_samples_are_separate_questions_and_their_mean_counts(workspace, server):
    server.add_rule(None, lambda r: {"1": "SCORE: 5", "2": "SCORE: 7", "3": "SCORE: 9"}[
        re.search(r"Independent grading (\d)", r["messages"][1]["content"]).group(1)])
    setup = setup_of(recipe(workspace / "r", server, surface="text", metric="samples = 3"))
    m = measure(setup)
    assert m.value == 7.0 and server.count == 3
    again = measure(setup)  # the same text: every sample comes from the cache
    assert again.value == 7.0 and server.count == 3


def test_a_reply_with_no_score_is_asked_again_once(workspace, server):
    server.queue("Solid letter, friendly tone.", "Solid letter, friendly tone.\nSCORE: 8")
    setup = setup_of(recipe(workspace / "r", server, surface="text"))
    m = measure(setup)
    assert m.value == 8.0 and len(m.llm_calls) == 2
    retry = server.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Solid letter, friendly tone."}
    assert "Your reply has no line 'SCORE: n' with n from 1 to 10" in retry[-1]["content"]


def test_a_judge_that_never_gives_a_score_makes_a_crash_that_says_why(workspace, server):
    server.add_rule(None, "Looks good to me.")
    setup = setup_of(recipe(workspace / "r", server, surface="text"))
    m = measure(setup)
    assert m.status == "crash"
    assert m.reason == ("the judge (openai/judge-model) gave no line 'SCORE: n' with n from 1 to 10, even when asked again; "
                        "it replied: 'Looks good to me.'")
    assert len(m.llm_calls) == 2  # both calls are kept for the log


def test_a_judge_cut_off_before_its_score_says_so(workspace, server):
    server.add_rule(None, "The letter is friendly but generic. " * 10 + "\nSCORE: 6")
    m = measure(setup_of(recipe(workspace / "r", server, surface="text", metric="max_tokens = 16")))
    assert m.status == "crash"
    assert "even when asked again (its reply was cut off at max_tokens = 16; raise it)" in m.reason


def test_a_score_outside_one_to_ten_is_no_score(workspace, server):
    server.queue("SCORE: 42", "SCORE: 10")
    m = measure(setup_of(recipe(workspace / "r", server, surface="text")))
    assert m.value == 10.0 and server.count == 2


# -- pairwise ---------------------------------------------------------------------------


def prefers_ps(request) -> str:
    """A judge that likes a P.S., whichever position it is shown in."""
    text = request["messages"][1]["content"]
    a = text.split("Version A:")[1].split("Version B:")[0]
    b = text.split("Version B:")[1]
    if ("P.S." in a) == ("P.S." in b):
        return "Equal.\nWINNER: TIE"
    return ("A has a P.S. with a question.\nWINNER: A" if "P.S." in a else "B has a P.S. with a question.\nWINNER: B")


def test_pairwise_asks_both_orders_and_climbs_from_the_best(workspace, server):
    server.add_rule(None, prefers_ps)
    setup = setup_of(recipe(workspace / "r", server, metric='mode = "pairwise"'))
    base = setup.surface.read()
    assert measure(setup).value == 0.0 and server.count == 0  # the baseline has no best to beat
    better = base.replace("Sam\n", "Sam\n\nP.S. Would a 15-minute call next week work?\n")
    m = measure(setup, better, best_view=base, best_score=0.25)
    assert m.value == 0.75  # the best's 0.25 plus a margin of 0.5: it won every comparison
    assert server.count == 6  # three recipients, both orders
    assert [e.score for e in m.examples] == [1.0, 1.0, 1.0]
    prompts = server.prompts
    assert sum(p.split("Version B:")[1].count("P.S.") for p in prompts) == 3  # the candidate was shown second half the time
    worse = measure(setup, base, best_view=better, best_score=0.75)
    assert worse.value == 0.25
    assert worse.examples[0].feedback == ("(the candidate was version A) B has a P.S. with a question.\n---\n"
                                          "(the candidate was version B) A has a P.S. with a question.")


def test_pairwise_without_a_best_compares_with_the_original(workspace, server):
    """A confirmation measures the best again with no best to compare with: the original is the reference."""
    server.add_rule(None, prefers_ps)
    setup = setup_of(recipe(workspace / "r", server, metric='mode = "pairwise"'))
    better = setup.surface.read().replace("Sam\n", "Sam\n\nP.S. Would a 15-minute call next week work?\n")
    assert measure(setup, better).value == 0.5
    assert all(LETTER.split("\n")[2] in p for p in server.prompts)


def test_a_judge_that_always_picks_the_first_version_cancels_out(workspace, server):
    server.add_rule(None, "The first one reads better.\nWINNER: A")
    setup = setup_of(recipe(workspace / "r", server, metric='mode = "pairwise"'))
    base = setup.surface.read()
    m = measure(setup, base.replace("Best,", "Kind regards,"), best_view=base, best_score=1.0)
    assert m.value == 1.0 and m.components["win share"] == 0.5


def test_a_pairwise_run_keeps_what_the_judge_prefers_to_the_best(cli, workspace, server):
    server.add_rule(None, prefers_ps)
    proposals = [
        {"replace": ["Sam\n", "Sam\n\nP.S. Would a 15-minute call next week work?\n"], "rationale": "ask one question"},
        {"replace": ["Best,", "Cheers,"], "rationale": "warmer sign-off"},
    ]
    folder = recipe(workspace / "r", server, metric='mode = "pairwise"',
                    files={"proposals.jsonl": "\n".join(json.dumps(p) for p in proposals) + "\n"})
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    rows = {r["seq"]: r for r in Store(workspace / ".overnight" / "overnight.db").experiments(1)}
    assert (rows[0]["status"], rows[0]["score"]) == ("baseline", 0.0)
    assert (rows[1]["status"], rows[1]["score"]) == ("keep", 0.5)
    assert (rows[2]["status"], rows[2]["score"]) == ("discard", 0.5)  # a tie with the best is no gain
    assert (folder / "letter.txt").read_text() == LETTER


# -- bad input --------------------------------------------------------------------------


def test_a_missing_rubric_file_stops_the_run_before_anything(cli, workspace, server):
    folder = recipe(workspace / "r", server)
    (folder / "rubric.md").unlink()
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    assert f"Error: The rubric file {folder / 'rubric.md'} does not exist (rubric = 'rubric.md')." in result.output
    assert server.count == 0


def test_a_rubric_can_be_written_in_the_recipe(workspace, server):
    server.add_rule(None, "SCORE: 9")
    folder = recipe(workspace / "r", server, surface="text")
    (folder / "recipe.toml").write_text((folder / "recipe.toml").read_text().replace(
        'rubric = "rubric.md"', 'rubric = "One clear question at the end."'))
    m = measure(setup_of(folder))
    assert m.value == 9.0 and "One clear question at the end." in server.prompts[0]


def test_validate_reports_a_missing_rubric_file_as_run_would(cli, workspace, server):
    folder = recipe(workspace / "r", server, metric="", files={"rubric.md": "x"})
    (folder / "recipe.toml").write_text((folder / "recipe.toml").read_text().replace('rubric = "rubric.md"', 'rubric = "missing.md"'))
    result = cli("recipes", "validate", folder)
    assert result.exit_code == 2
    assert "[metric]: The rubric file" in result.output and "missing.md does not exist" in result.output
