"""Bad inputs, one row each: every one ends in a sentence that says what is wrong and where,
never in a traceback, a hang or a silent wrong result, and the person's file is untouched.

A row is (id, how to set it up, the command, what its output must say, the exit code).
Setups change one thing of a working recipe (tests/data/core/kit.py `recipe`); rows that
must write nothing check that no run was recorded.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from tests.data.core.kit import recipe

GOOD = """[recipe]
name = "r"

[surface]
kind = "text"
path = "doc.txt"

[metric]
kind = "command"
run = "sh {recipe}/score.sh {file}"

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
"""


def toml(*, drop: str = "", add: str = "", swap: tuple[str, str] | None = None, text: str | None = None):
    """A setup that writes a recipe.toml changed from GOOD."""
    def setup(ws: Path) -> list[str]:
        recipe(ws / "r", proposals=["x" * 12 + "\n"])
        body = GOOD if text is None else text
        if swap:
            assert swap[0] in body, swap
            body = body.replace(*swap)
        if drop:
            assert drop in body, drop
            body = body.replace(drop, "")
        (ws / "r" / "recipe.toml").write_text(body + add)
        return ["run", "r", "--yes"]
    return setup


def metric(code: str, *, proposals=("x" * 12 + "\n",), goal: str = "", extra: str = "", command: list[str] | None = None):
    """A setup whose metric is the python function `score` in m.py."""
    def setup(ws: Path) -> list[str]:
        m = f'kind = "python"\nfile = "m.py"\n{goal}'
        recipe(ws / "r", proposals=list(proposals), metric=m + extra, files={"m.py": code})
        return command or ["run", "r", "--yes"]
    return setup


def shell_metric(script: str, *, proposals=("x" * 12 + "\n",)):
    def setup(ws: Path) -> list[str]:
        recipe(ws / "r", proposals=list(proposals), metric='kind = "command"\nrun = "sh {recipe}/m.sh {file}"',
               files={"m.sh": script})
        return ["run", "r", "--yes"]
    return setup


def weighted(value: str, weight: str = "1"):
    """Two metrics, one objective; the python one returns `value`."""
    def setup(ws: Path) -> list[str]:
        recipe(ws / "r", proposals=["x\n"], files={"m.py": f"def score(path):\n    return {value}\n"})
        body = GOOD.replace('[metric]\nkind = "command"\nrun = "sh {recipe}/score.sh {file}"\n',
                            f'[[metric]]\nkind = "command"\nrun = "sh {{recipe}}/score.sh {{file}}"\nweight = 1\n\n'
                            f'[[metric]]\nkind = "python"\nfile = "m.py"\nlabel = "m"\nweight = {weight}\n')
        (ws / "r" / "recipe.toml").write_text(body)
        return ["run", "r", "--yes"]
    return setup


def agent(lines: list[str] | str, *, budget: str = ""):
    def setup(ws: Path) -> list[str]:
        recipe(ws / "r", budget=budget)
        (ws / "r" / "proposals.jsonl").write_text(lines if isinstance(lines, str) else "".join(l + "\n" for l in lines))
        return ["run", "r", "--yes"]
    return setup


def after_a_run(*command: str, then: Callable[[Path], None] | None = None):
    """A setup with one finished run (experiments 1:1 keep, 1:2 keep, 1:3 crash), then `command`."""
    def setup(ws: Path) -> list[str]:
        recipe(ws / "r", proposals=["x" * 12 + "\n", "x" * 14 + "\n", "CRASH\n"])
        assert CliRunner().invoke(_cli(), ["run", "r", "--yes", "-q"]).exit_code == 0
        if then:
            then(ws)
        return list(command)
    return setup


def store(prepare: Callable[[Path], None], *command: str):
    def setup(ws: Path) -> list[str]:
        recipe(ws / "r", proposals=["x" * 12 + "\n"])
        prepare(ws)
        return list(command)
    return setup


def _cli():
    from overnight.cli.main import cli
    return cli


def _write(rel: str, data: str | bytes):
    def do(ws: Path) -> None:
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return do


def _newer_store(ws: Path) -> None:
    from overnight.core.store import Store
    Store(ws / ".overnight" / "overnight.db").close()
    conn = sqlite3.connect(ws / ".overnight" / "overnight.db")
    conn.execute("insert into _sqlite_migrations (migration_set, name, applied_at) values ('overnight', '999_future', 'now')")
    conn.commit()
    conn.close()


ROWS: list[tuple[str, Callable[[Path], list[str]], str, int]] = [
    # -- recipe.toml --------------------------------------------------------------
    ("recipe-empty-file", toml(text=""), r"recipe\.toml.*\[recipe\]|missing", 2),
    ("recipe-no-name", toml(drop='name = "r"\n'), r"name", 2),
    ("recipe-name-a-number", toml(swap=('name = "r"', "name = 3")), r"name", 2),
    ("recipe-name-a-table", toml(swap=('name = "r"', "name = {a = 1}")), r"name", 2),
    ("recipe-unknown-section", toml(add="\n[metrc]\nkind = \"command\"\n"), r"metrc", 2),
    ("recipe-unknown-recipe-key", toml(swap=('name = "r"', 'name = "r"\nnmae = "x"')), r"nmae", 2),
    ("recipe-unknown-budget-key", toml(add="experimnts = 3\n"), r"experimnts", 2),
    ("recipe-negative-experiments", toml(add="experiments = -1\n"), r"experiments", 2),
    ("recipe-zero-parallel", toml(add="parallel = 0\n"), r"parallel", 2),
    ("recipe-negative-minutes", toml(add="minutes = -5\n"), r"minutes", 2),
    ("recipe-usd-a-string", toml(add='usd = "ten"\n'), r"usd", 2),
    ("recipe-parallel-a-float", toml(add="parallel = 1.5\n"), r"parallel", 2),
    ("recipe-experiments-inf", toml(add="experiments = inf\n"), r"experiments", 2),
    ("recipe-experiments-nan", toml(add="experiments = nan\n"), r"experiments", 2),
    ("recipe-usd-negative", toml(add="usd = -1\n"), r"usd", 2),
    ("recipe-seconds-zero", toml(add="per_experiment_seconds = 0\n"), r"per_experiment_seconds", 2),
    ("recipe-seconds-a-list", toml(add="per_experiment_seconds = [1]\n"), r"per_experiment_seconds", 2),
    # TOML reads nan and inf as floats: each is one sentence, not a traceback from the first wait.
    ("recipe-seconds-inf", toml(add="per_experiment_seconds = inf\n"), r"'per_experiment_seconds' must be a finite number, not inf", 2),
    ("recipe-seconds-nan", toml(add="per_experiment_seconds = nan\n"), r"'per_experiment_seconds' must be a finite number, not nan", 2),
    ("recipe-seconds-past-a-week", toml(add="per_experiment_seconds = 1e308\n"), r"'per_experiment_seconds' must be at most 604800", 2),
    ("recipe-surface-path-the-recipe-folder", toml(swap=('path = "doc.txt"', 'path = "."')), r"The surface file .* is a folder; the surface path names one file \(surface path = '\.'\)", 1),
    ("recipe-min-delta-nan", toml(add="min_delta = nan\n"), r"'min_delta' must be a finite number, not nan", 2),
    ("recipe-minutes-inf", toml(add="minutes = inf\n"), r"'minutes' must be a finite number, not inf", 2),
    ("run-minutes-nan", lambda ws: toml()(ws) + ["--minutes", "nan"], r"nan is not a finite number of minutes", 2),
    ("recipe-duplicated-key", toml(add="experiments = 3\nexperiments = 4\n"), r"recipe\.toml:\d+: the key 'experiments' is given twice", 2),
    ("recipe-duplicated-name", toml(swap=('name = "r"', 'name = "r"\nname = "s"')), r"recipe\.toml:\d+: the key 'name' is given twice", 2),
    ("recipe-duplicated-table", toml(add="\n[budget]\nparallel = 1\n"), r"recipe\.toml:\d+.*budget", 2),
    ("recipe-unclosed-table", toml(swap=("[surface]", "[surface")), r"recipe\.toml:\d+:\d+: this is not valid TOML", 2),
    ("recipe-unclosed-string", toml(swap=('path = "doc.txt"', 'path = "doc.txt')), r"recipe\.toml:\d+:\d+: this is not valid TOML", 2),
    ("recipe-bare-word-value", toml(swap=('path = "doc.txt"', "path = doc.txt")), r"recipe\.toml:\d+:\d+: this is not valid TOML", 2),
    ("recipe-not-utf8", lambda ws: toml()(ws) + [(ws / "r" / "recipe.toml").write_bytes(b'[recipe]\nname = "\xff\xfe"\n')][:0],
     r"Cannot read .*recipe\.toml.*utf-8", 1),
    ("recipe-surface-unknown-kind", toml(swap=('kind = "text"', 'kind = "txt"')), r"txt", 2),
    ("recipe-surface-no-kind", toml(drop='kind = "text"\n'), r"kind", 2),
    ("recipe-surface-kind-a-number", toml(swap=('kind = "text"', "kind = 4")), r"kind", 2),
    ("recipe-surface-missing", toml(drop='[surface]\nkind = "text"\npath = "doc.txt"\n'), r"surface", 2),
    ("recipe-surface-a-value", toml(drop='[surface]\nkind = "text"\npath = "doc.txt"\n', swap=('[recipe]', 'surface = 3\n[recipe]')), r"surface", 2),
    ("recipe-metric-missing", toml(drop='[metric]\nkind = "command"\nrun = "sh {recipe}/score.sh {file}"\n'), r"metric", 2),
    ("recipe-metric-unknown-kind", toml(swap=('kind = "command"', 'kind = "comand"')), r"comand", 2),
    ("recipe-metric-goal-misspelt", toml(swap=('kind = "command"', 'kind = "command"\ngoal = "maximise"')), r"goal", 2),
    ("recipe-metric-weight-a-word", toml(swap=('kind = "command"', 'kind = "command"\nweight = "heavy"')), r"weight", 2),
    ("recipe-metric-no-run", toml(drop='run = "sh {recipe}/score.sh {file}"\n'), r"run", 2),
    ("recipe-metric-run-a-number", toml(swap=('run = "sh {recipe}/score.sh {file}"', "run = 5")), r"run", 2),
    ("recipe-agent-missing", toml(drop='[agent]\nkind = "scripted"\nfile = "proposals.jsonl"\n'), r"agent", 2),
    ("recipe-agent-unknown-kind", toml(swap=('kind = "scripted"', 'kind = "scriptd"')), r"scriptd", 2),
    ("recipe-agent-no-file", toml(drop='file = "proposals.jsonl"\n'), r"file", 2),
    ("recipe-notify-unknown-key", toml(add='\n[notify]\nurll = "x"\n'), r"urll|notify", 2),
    ("recipe-budget-a-value", toml(swap=("[recipe]", "budget = 3\n[recipe]"), drop="[budget]\n"), r"budget", 2),
    # -- recipe path and files ------------------------------------------------------
    ("path-recipe-missing", lambda ws: ["run", "nowhere", "--yes"], r"nowhere", 1),
    ("path-folder-without-recipe", lambda ws: (ws / "empty").mkdir() or ["run", "empty", "--yes"], r"recipe\.toml", 1),
    ("surface-file-missing", lambda ws: recipe(ws / "r") and (ws / "r" / "doc.txt").unlink() or ["run", "r", "--yes"], r"doc\.txt", 1),
    ("surface-path-a-folder", lambda ws: toml(swap=('path = "doc.txt"', 'path = "sub"'))(ws) + [(ws / "r" / "sub").mkdir()][:0],
     r"The surface file .*sub is a folder; the surface path names one file \(surface path = 'sub'\)", 1),
    ("surface-path-empty", toml(swap=('path = "doc.txt"', 'path = ""')), r"'path' must not be empty \(the file to improve", 2),
    ("surface-path-absolute-elsewhere", toml(swap=('path = "doc.txt"', 'path = "/nonexistent/doc.txt"')), r"doc\.txt", 1),
    ("surface-path-parent", toml(swap=('path = "doc.txt"', 'path = "../../../etc/passwd"')), r"passwd|outside|folder", 1),
    ("agent-file-missing", toml(swap=('file = "proposals.jsonl"', 'file = "nope.jsonl"')), r"nope\.jsonl", 1),
    ("metric-python-file-missing", toml(swap=('kind = "command"\nrun = "sh {recipe}/score.sh {file}"', 'kind = "python"\nfile = "absent.py"')), r"absent\.py", 1),
    ("metric-python-function-missing", metric("def other(path):\n    return 1\n"), r"has no attribute 'score'", 1),
    ("metric-python-syntax-error", metric("def score(path)\n    return 1\n"), r"m\.py", None),
    # -- numbers that are not numbers (baseline: the run stops before spending) --------
    ("metric-baseline-nan", metric("def score(path):\n    return float('nan')\n"), r"the metric printed nan, not a number", 1),
    ("metric-baseline-inf", metric("def score(path):\n    return float('inf')\n"), r"the metric printed inf, not a number", 1),
    ("metric-baseline-minus-inf", metric("def score(path):\n    return float('-inf')\n"), r"the metric printed -inf, not a number", 1),
    ("metric-baseline-overflow", metric("def score(path):\n    return 1e308 * 10\n"), r"printed inf, not a number", 1),
    ("metric-baseline-huge-int", metric("def score(path):\n    return 10 ** 400\n"), r"The baseline could not be measured \(crash\).*too large", 1),
    ("metric-baseline-a-string", metric("def score(path):\n    return 'high'\n"), r"returned 'high', not a number", 1),
    ("metric-baseline-none", metric("def score(path):\n    return None\n"), r"returned None, not a number", 1),
    ("metric-baseline-raises", metric("def score(path):\n    raise ValueError('no good')\n"), r"no good", 1),
    ("metric-command-nan", shell_metric("echo nan\n"), r"baseline could not be measured", 1),
    ("metric-command-inf", shell_metric("echo inf\n"), r"baseline could not be measured", 1),
    ("metric-command-1e400", shell_metric("echo 1e400\n"), r"baseline could not be measured", 1),
    ("metric-command-minus-inf", shell_metric("echo -inf\n"), r"baseline could not be measured", 1),
    ("metric-command-empty-output", shell_metric("true\n"), r"baseline could not be measured", 1),
    ("metric-command-exit-3", shell_metric("echo 5; exit 3\n"), r"baseline could not be measured", 1),
    ("metric-command-not-found", shell_metric("no-such-program-xyz\n"), r"baseline could not be measured", 1),
    ("metric-command-words-only", shell_metric("echo great\n"), r"baseline could not be measured", 1),
    ("metric-weighted-component-nan", weighted("float('nan')"), r"the metric m printed nan, not a number", 1),
    ("metric-weighted-component-inf", weighted("float('inf')"), r"the metric m printed inf, not a number", 1),
    ("metric-weighted-sum-overflows", weighted("1e308", weight="1e10"), r"printed inf, not a number", 1),
    ("metric-candidate-nan-is-a-crash", metric("import math\ndef score(path):\n    t = open(path).read()\n    return float('nan') if 'N' in t else len(t)\n",
                                               proposals=("N\n", "x" * 12 + "\n")), r"Kept 1 of 2", 0),
    ("metric-candidate-minus-inf-not-kept", metric("def score(path):\n    t = open(path).read()\n    return float('-inf') if 'N' in t else len(t)\n",
                                                   proposals=("N\n",), goal='goal = "minimize"\n'), r"Kept 0 of 1", 0),
    ("metric-candidate-inf-not-kept", metric("def score(path):\n    t = open(path).read()\n    return float('inf') if 'N' in t else len(t)\n",
                                             proposals=("N\n",)), r"Kept 0 of 1", 0),
    ("metric-candidate-raises", metric("def score(path):\n    t = open(path).read()\n    if 'N' in t:\n        raise KeyError('k')\n    return len(t)\n",
                                       proposals=("N\n",)), r"Kept 0 of 1", 0),
    ("metric-candidate-100mb-output", shell_metric("head -c 20000000 /dev/zero | tr '\\0' y; echo; wc -c < \"$1\"\n", proposals=("x" * 12 + "\n",)), r"Kept 1 of 1", 0),
    # -- the agent ------------------------------------------------------------------
    ("agent-line-not-json", agent(["{not json"]), r"proposals\.jsonl:1: this line is not valid JSON", 1),
    ("agent-line-a-list", agent(['["a", "b"]']), r"proposals\.jsonl:1: each line must be a JSON object", 1),
    ("agent-proposal-empty-object", agent(["{}"]), r"proposals\.jsonl:1: each line needs 'view'", 1),
    ("agent-edit-text-absent", agent([json.dumps({"replace": ["nothere", "x"]})]), r"Kept 0 of 1", 0),
    ("agent-view-a-number", agent([json.dumps({"view": 5})]), r"proposals\.jsonl:1: 'view' must be a string", 1),
    ("agent-no-proposals", agent(""), r"no more proposals", 0),
    ("agent-blank-lines-only", agent("\n\n\n"), r"no more proposals", 0),
    ("agent-same-view-twice", agent([json.dumps({"view": "x\n"}), json.dumps({"view": "x\n"})]), r"1 duplicate", 0),
    ("agent-view-unchanged", agent([json.dumps({"view": "hello\n"})]), r"Kept 0 of 1", 0),
    ("agent-file-binary", agent("\x00\x01\x02"), r"proposals\.jsonl:1: this line is not valid JSON", 1),
    # -- the store ------------------------------------------------------------------
    ("store-db-a-folder", store(lambda ws: (ws / "dbdir").mkdir(), "status", "--db", "dbdir"), r"dbdir", 2),
    ("store-db-a-text-file", store(_write("notes.txt", "hello, this is not a database " * 100), "status", "--db", "notes.txt"), r"notes\.txt", 1),
    ("store-db-under-a-file", store(_write("afile", "x"), "log", "--db", "afile/sub/o.db"), r"afile", 1),
    ("store-db-garbage-header", store(_write(".overnight/overnight.db", b"SQLite format 3\x00" + b"\xff" * 200), "status"), r"overnight\.db", 1),
    ("store-newer-version", store(_newer_store, "status"), r"newer version of overnight", 1),
    ("store-log-without-store", store(lambda ws: None, "log"), r"No overnight store|no run", 1),
    ("store-show-without-store", store(lambda ws: None, "show", "1"), r"No overnight store|no run", 1),
    ("store-diff-without-store", store(lambda ws: None, "diff", "1"), r"No overnight store|no run", 1),
    ("store-export-without-store", store(lambda ws: None, "export"), r"No overnight store|no run", 1),
    ("store-log-run-not-found", after_a_run("log", "42"), r"42", 1),
    ("store-log-run-not-a-number", after_a_run("log", "abc"), r"abc", 1),
    ("store-show-experiment-not-found", after_a_run("show", "99"), r"99", 1),
    ("store-show-run-not-found", after_a_run("show", "7:1"), r"7", 1),
    ("store-show-not-a-reference", after_a_run("show", "x:y"), r"x:y", 1),
    ("store-show-negative", after_a_run("show", "-1"), r"No such option", 2),
    ("store-diff-second-not-found", after_a_run("diff", "1:1", "50"), r"50", 1),
    ("store-export-run-not-found", after_a_run("export", "9"), r"9", 1),
    ("store-resume-nothing-to-resume", after_a_run("run", "r", "--resume", "--yes"), r"no unfinished run", 1),
    # -- apply --------------------------------------------------------------------------
    ("apply-run-not-found", after_a_run("apply", "9:1"), r"9", 1),
    ("apply-experiment-not-found", after_a_run("apply", "1:99"), r"99", 1),
    ("apply-not-a-reference", after_a_run("apply", "one:two"), r"one:two", 1),
    ("apply-empty-seq", after_a_run("apply", "1:"), r"1:", 1),
    ("apply-file-deleted", after_a_run("apply", "1:2", then=lambda ws: (ws / "r" / "doc.txt").unlink()), r"does not exist any more", 1),
    ("apply-file-changed", after_a_run("apply", "1:2", then=_write("r/doc.txt", "my own edit\n")), r"changed since run 1 began", 1),
    # A dry run writes nothing, so it shows what would change and warns instead of refusing.
    ("apply-dry-run-file-changed", after_a_run("apply", "1:2", "--dry-run", then=_write("r/doc.txt", "my own edit\n")), r"Warning: .*changed since run 1 began", 0),
    ("apply-crashed-experiment", after_a_run("apply", "1:3"), r"Experiment 1:3 crashed.*nothing was written", 1),
    ("apply-without-store", store(lambda ws: None, "apply", "1:1"), r"No overnight store|no run", 1),
]

# Rows whose exit code is checked loosely (None): the sentence is what matters, and the
# exit is non-zero for an error or zero for a run that went on.


@pytest.mark.parametrize("setup, pattern, code", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_a_bad_input_is_one_sentence(workspace, setup, pattern, code):
    args = setup(workspace)
    doc = workspace / "r" / "doc.txt"
    before = doc.read_bytes() if doc.exists() and "apply" not in args else None
    result = CliRunner().invoke(_cli(), args)
    out = result.output
    # A baseline that fails shows the tail of the metric's own output (its traceback, for a
    # python metric): that is the person's code speaking, not overnight failing.
    ours = out.split("The baseline could not be measured")[0]
    assert "Traceback" not in ours and 'File "' not in ours, out
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    if code is not None:
        assert result.exit_code == code, out
    assert re.search(pattern, out, re.S), out
    if result.exit_code != 0:
        assert re.search(r"(Error|error|Usage):", out), out  # said in a sentence, not silently
    if before is not None:
        assert doc.read_bytes() == before  # the person's file is never written but by apply
    if code == 2 and args[:1] == ["run"]:
        db = workspace / ".overnight" / "overnight.db"
        assert not db.exists() or _runs(db) == 0  # a recipe mistake records nothing


def _runs(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("select count(*) from runs").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def test_the_table_has_a_hundred_distinct_inputs():
    assert len({r[0] for r in ROWS}) == len(ROWS) >= 100


# -- the model server (the loopback OpenAI-compatible server of tests/support) ---------------

MODEL_ROWS = [
    # (id, the [agent] keys past kind and model, how the server answers, a key in the environment?, pattern, exit)
    ("model-history-negative", "history = -1\n", None, True, r"history", 2),
    ("model-temperature-too-high", "temperature = 5\n", None, True, r"temperature", 2),
    ("model-max-tokens-too-low", "max_tokens = 1\n", None, True, r"max_tokens", 2),
    ("model-timeout-zero", "timeout = 0\n", None, True, r"timeout", 2),
    ("model-unknown-edit-format", 'edit_format = "diffs"\n', None, True, r"edit_format", 2),
    ("model-instructions-missing", 'instructions = "absent.md"\n', None, True, r"absent\.md", 1),
    ("model-server-wrong-key", "", 401, True, r"", None),
    ("model-server-unknown-model", "", 404, True, r"", None),
    ("model-server-always-500", "", 500, True, r"", None),
    ("model-server-closed-port", "CLOSED", None, True, r"", None),
    ("model-reply-without-an-edit", "", "I would rather not change anything.", True, r"Kept 0 of 1|invalid", None),
    ("model-reply-empty", "", "", True, r"", None),
]


@pytest.mark.parametrize("agent_keys, answer, with_key, pattern, code", [r[1:] for r in MODEL_ROWS], ids=[r[0] for r in MODEL_ROWS])
def test_a_bad_model_input_is_one_sentence(workspace, monkeypatch, llm_server, agent_keys, answer, with_key, pattern, code):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    if with_key:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bad-inputs-0123456789")
    url = llm_server.url
    if agent_keys == "CLOSED":
        import socket

        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        agent_keys = ""
    if answer is not None:
        llm_server.add_rule(None, answer if isinstance(answer, str) else llm_server.error(answer))
    recipe(workspace / "r", budget="experiments = 1\nmax_failures = 1",
           agent=f'kind = "llm"\nmodel = "openai/agent-model"\napi_base = "{url}"\n{agent_keys}')
    before = (workspace / "r" / "doc.txt").read_bytes()
    result = CliRunner().invoke(_cli(), ["run", "r", "--yes", "-q"])
    out = result.output
    assert "Traceback" not in out and 'File "' not in out, out
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    if code is not None:
        assert result.exit_code == code, out
    assert re.search(pattern, out, re.S), out
    assert (workspace / "r" / "doc.txt").read_bytes() == before
    if result.exit_code == 0:
        assert re.search(r"Run \d+ of 'r' (finished|stopped)", out), out  # said how it ended
    else:
        assert re.search(r"(Error|error|Usage):", out), out


def test_the_tables_hold_more_than_a_hundred_distinct_inputs():
    assert len({r[0] for r in ROWS + MODEL_ROWS}) == len(ROWS) + len(MODEL_ROWS) >= 100
