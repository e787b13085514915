"""The four built-in plugins on their own: text, command, python, scripted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overnight.core.contracts import Attempt, MeasureRequest
from overnight.core.errors import OvernightError
from overnight.core.options import check
from overnight.plugins.command import CommandMetric
from overnight.plugins.python_metric import PythonMetric
from overnight.plugins.scripted import ScriptedAgent
from overnight.plugins.text import TextSurface
from tests.conftest import write
from tests.data.core.kit import experiments, recipe


def make(cls, folder: Path, **options):
    checked = check(options, cls.options)
    assert not checked.problems, checked.problems
    return cls(checked.values, folder)


def measure(metric, folder: Path, text: str = "some text\n", seconds: float = 10):
    work = folder / "work"
    work.mkdir(exist_ok=True)
    artifact = work / "doc.txt"
    artifact.write_text(text)
    return metric.measure(artifact, work, MeasureRequest(seconds))


# -- text ----------------------------------------------------------------------------------

REGIONED = "title\n# BEGIN\nthe part that may change\n# END\nfooter\n"


def test_text_region_is_the_only_part_that_may_change(tmp_path):
    write(tmp_path, {"doc.txt": REGIONED})
    surface = make(TextSurface, tmp_path, path="doc.txt", region_start="# BEGIN", region_end="# END")
    base = surface.read()
    assert surface.problems(base.replace("may change", "did change"), base) == []
    assert surface.problems(base.replace("footer", "FOOTER"), base) == ["it changes text outside the editable region"]
    assert surface.problems(base.replace("# END\n", ""), base) == ["the region markers are missing or out of order"]
    assert "between the marker lines '# BEGIN' and '# END'" in surface.rules()


def test_text_without_its_region_markers_is_a_clear_error(tmp_path):
    write(tmp_path, {"doc.txt": "no markers here\n"})
    surface = make(TextSurface, tmp_path, path="doc.txt", region_start="# BEGIN", region_end="# END")
    with pytest.raises(OvernightError) as err:
        surface.read()
    assert "has no editable region: expected a line '# BEGIN' followed by a line '# END'" in err.value.message


def test_a_proposal_outside_the_region_is_invalid_in_a_run(workspace, cli):
    folder = recipe(workspace / "r", text=REGIONED,
                    surface='kind = "text"\npath = "doc.txt"\nregion_start = "# BEGIN"\nregion_end = "# END"',
                    proposals=[REGIONED.replace("footer", "a much longer footer"),
                               REGIONED.replace("may change", "may change, and did")])
    assert cli("run", folder, "--yes").exit_code == 0
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert exps[1]["status"] == "invalid"
    assert exps[1]["reason"] == "the surface rejected it: it changes text outside the editable region"
    assert exps[2]["status"] == "keep"


def test_text_materializes_beside_the_recipe_files_and_applies_with_a_backup(tmp_path):
    write(tmp_path, {"sub/doc.txt": "old\n"})
    surface = make(TextSurface, tmp_path, path="sub/doc.txt")
    work = tmp_path / "work"
    work.mkdir()
    artifact = surface.materialize("new\n", work)
    assert artifact == work / "sub" / "doc.txt" and artifact.read_text() == "new\n"
    assert (tmp_path / "sub" / "doc.txt").read_text() == "old\n"
    backup = surface.apply("new\n", tmp_path / "backups")
    assert (tmp_path / "sub" / "doc.txt").read_text() == "new\n"
    assert backup.parent == tmp_path / "backups" and backup.read_text() == "old\n"
    assert surface.diff("old\n", "new\n").splitlines()[2:] == ["@@ -1 +1 @@", "-old", "+new"]


# -- command -------------------------------------------------------------------------------


def test_command_reads_the_first_group_of_its_pattern(tmp_path):
    metric = make(CommandMetric, tmp_path, run="echo 'run 3: accuracy 0.75 (n=4)'", pattern=r"accuracy ([0-9.]+)")
    m = measure(metric, tmp_path)
    assert m.ok and m.value == 0.75


def test_command_reads_the_last_number_by_default_and_quotes_the_file(tmp_path):
    folder = tmp_path / "a folder with spaces"
    folder.mkdir()
    metric = make(CommandMetric, folder, run="cat {file} | wc -w; echo 1 2 3.5e1")
    m = measure(metric, folder, "three words here\n")
    assert m.value == 35.0 and m.trace.splitlines()[0].strip() == "3"


def test_command_reads_a_json_file(tmp_path):
    metric = make(CommandMetric, tmp_path, run="""echo '{"a": {"b": 7}}' > out.json""", json_file="out.json", json_key="a.b")
    assert measure(metric, tmp_path).value == 7
    missing = make(CommandMetric, tmp_path, run="true", json_file="out2.json")
    m = measure(missing, tmp_path)
    assert m.status == "crash" and m.reason == "the command did not write out2.json"
    wrong = make(CommandMetric, tmp_path, run="""echo '{"a": 1}' > out.json""", json_file="out.json", json_key="b")
    assert "no number at key 'b' in out.json" in measure(wrong, tmp_path).reason


def test_command_exit_code_is_a_crash_with_the_last_50_lines(tmp_path):
    metric = make(CommandMetric, tmp_path, run="for i in $(seq 1 70); do echo line $i; done; echo oops >&2; exit 4")
    m = measure(metric, tmp_path)
    assert m.status == "crash" and m.value is None
    assert m.reason == "the command exited with code 4: oops"
    lines = m.trace.splitlines()
    assert len(lines) == 50 and lines[-1] == "oops" and lines[0] == "line 22"


def test_command_without_a_number_or_with_a_bad_pattern(tmp_path):
    metric = make(CommandMetric, tmp_path, run="echo nothing", pattern=r"score=(\d+)")
    m = measure(metric, tmp_path)
    assert m.status == "crash" and m.reason == "the command printed no number matching 'score=(\\\\d+)'"
    with pytest.raises(OvernightError) as err:
        make(CommandMetric, tmp_path, run="true", pattern="(unclosed")
    assert "is not a valid regular expression" in err.value.message


def test_command_timeout_kills_the_process_group(tmp_path):
    metric = make(CommandMetric, tmp_path, run="sh -c 'echo $$ > child.pid; exec sleep 30' & sleep 30")
    m = measure(metric, tmp_path, seconds=0.5)
    assert m.status == "timeout" and m.reason == "took longer than 0.5 s"
    assert m.seconds < 5
    from tests.data.core.kit import alive

    import time

    pid = int((tmp_path / "work" / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_command_gets_its_environment(tmp_path):
    metric = make(CommandMetric, tmp_path, run='echo "$GREETING $OVERNIGHT_SPLIT"; echo 1', env={"GREETING": "hi"})
    assert measure(metric, tmp_path).trace.splitlines()[0] == "hi train"


def test_command_not_found_is_found_before_the_run(tmp_path):
    make(CommandMetric, tmp_path, run="sh {file}").prepare(None)
    make(CommandMetric, tmp_path, run="cd . && wc -c {file}").prepare(None)
    with pytest.raises(OvernightError) as err:
        make(CommandMetric, tmp_path, run="not-a-program-anywhere {file}").prepare(None)
    assert err.value.message == ("The metric command 'not-a-program-anywhere' was not found "
                                 "(metric run = 'not-a-program-anywhere {file}').")


# -- python --------------------------------------------------------------------------------

SCORERS = '''
import time

def length(path):
    print("measuring", path)
    return len(open(path).read())

def with_examples(path):
    return {"score": 0.5, "examples": [
        {"id": "a", "input": "1+1", "output": "2", "expected": "2", "score": 1},
        {"id": "b", "input": "2+2", "output": "5", "expected": "4", "score": 0, "feedback": "off by one"}]}

def words(path):
    return "many"

def fails(path):
    raise ValueError("cannot score this")

def hangs(path):
    time.sleep(30)
'''


@pytest.fixture
def scorers(tmp_path):
    write(tmp_path, {"scorers.py": SCORERS})
    return tmp_path


def test_python_returns_a_number(scorers):
    m = measure(make(PythonMetric, scorers, file="scorers.py", function="length"), scorers, "12345\n")
    assert m.value == 6 and m.trace.startswith("measuring ") and "@@overnight" not in m.trace


def test_python_returns_a_score_with_examples(scorers):
    m = measure(make(PythonMetric, scorers, file="scorers.py", function="with_examples"), scorers)
    assert m.value == 0.5
    assert [(e.id, e.score, e.feedback) for e in m.examples] == [("a", 1.0, ""), ("b", 0.0, "off by one")]


def test_python_failures_are_crashes_and_timeouts(scorers):
    words = measure(make(PythonMetric, scorers, file="scorers.py", function="words"), scorers)
    assert words.status == "crash" and words.reason == "the function returned 'many', not a number"
    fails = measure(make(PythonMetric, scorers, file="scorers.py", function="fails"), scorers)
    assert fails.status == "crash" and fails.reason == "the function failed: ValueError: cannot score this"
    assert "Traceback" in fails.trace  # the recipe's own code: its traceback is the useful trace
    missing = measure(make(PythonMetric, scorers, file="scorers.py", function="nope"), scorers)
    assert missing.status == "crash" and "has no attribute 'nope'" in missing.reason
    hangs = measure(make(PythonMetric, scorers, file="scorers.py", function="hangs"), scorers, seconds=0.5)
    assert hangs.status == "timeout" and hangs.seconds < 5


def test_python_file_must_exist(tmp_path):
    with pytest.raises(OvernightError) as err:
        make(PythonMetric, tmp_path, file="missing.py").prepare(None)
    assert "The metric file" in err.value.message and "missing.py does not exist" in err.value.message


# -- scripted ------------------------------------------------------------------------------


def context(view: str = "base text\n"):
    from overnight.core.contracts import Context

    return Context(best_view=view, best_score=1.0, baseline_score=1.0, goal="maximize", rules="", metric="",
                   parameters=[], history=[], ledger=[], failing=[], notes=[], budget_left={}, seq=1)


def test_scripted_proposes_in_order_then_none(tmp_path):
    lines = [{"view": "a\n", "rationale": "first"}, None, {"replace": ["base", "better"], "rationale": "second"}]
    (tmp_path / "p.jsonl").write_text("".join((json.dumps(x) if x else "") + "\n" for x in lines))
    agent = make(ScriptedAgent, tmp_path, file="p.jsonl")
    agent.start(None, [])
    one, two = agent.propose(context()), agent.propose(context())
    assert (one.view, one.rationale, one.meta) == ("a\n", "first", {"line": 1})
    assert (two.view, two.edits, two.meta) == (None, [("base", "better")], {"line": 3})
    assert agent.propose(context()) is None


def test_scripted_resumes_after_what_was_recorded_and_retries_what_was_interrupted(tmp_path):
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"view": f"{i}\n"}) + "\n" for i in range(1, 6)))
    agent = make(ScriptedAgent, tmp_path, file="p.jsonl")
    done = [Attempt(1, "keep", "", "", 1.0, 0.0, meta={"line": 1}),
            Attempt(2, "interrupted", "", "", None, None, meta={"line": 2}),
            Attempt(3, "discard", "", "", 1.0, 0.0, meta={"line": 4})]
    agent.start(None, done)
    assert [agent.propose(context()).meta["line"] for _ in range(3)] == [2, 3, 5]
    assert agent.propose(context()) is None


def test_scripted_file_missing(tmp_path):
    with pytest.raises(OvernightError) as err:
        make(ScriptedAgent, tmp_path, file="nowhere.jsonl")
    assert "The proposals file" in err.value.message and "(agent file = 'nowhere.jsonl')" in err.value.message
