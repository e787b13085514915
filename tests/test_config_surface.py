"""The `config` surface: declared keys of a TOML or JSON file change, nothing else does,
and the person's comments and layout come through a run and an apply untouched."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write
from tests.data.core.kit import experiments, no_traceback, rows

SETTINGS_TOML = """
# Settings for the nightly job. Keep this comment!
title = "nightly"

[model]
learning_rate = 0.01   # how fast it learns
kind = "linear"        # linear or tree

[train]
epochs = 10
seed = 42              # never changes
"""

PARAMS = """[
  { key = "model.learning_rate", min = 0.0001, max = 0.1, log = true },
  { key = "model.kind", choices = ["linear", "tree"] },
  { key = "train.epochs", min = 1, max = 50, integer = true },
]"""

# Best at learning_rate 0.001, kind tree, epochs 30: awk reads the values back from the file.
SCORE_AWK = """
$1 == "learning_rate" { r = $3 }
$1 == "kind" { k = $3 }
$1 == "epochs" { e = $3 }
END { d = log(r / 0.001); print d * d + (k == "\\"tree\\"" ? 0 : 1) + (e - 30) * (e - 30) / 100 }
"""


def recipe(workspace, *, path: str = "settings.toml", content: str = SETTINGS_TOML, params: str = PARAMS,
           agent: str = 'kind = "search"\nseed = 1', budget: str = "experiments = 15", files: dict | None = None,
           metric: str = 'kind = "command"\nrun = "awk -f {recipe}/score.awk {file}"\ngoal = "minimize"'):
    return write(workspace / "job", {
        "recipe.toml": f"""
            [recipe]
            name = "job"

            [surface]
            kind = "config"
            path = "{path}"
            params = {params}

            [metric]
            {metric}

            [agent]
            {agent}

            [budget]
            {budget}
            """,
        path: content,
        "score.awk": SCORE_AWK,
        **(files or {}),
    })


def db(workspace):
    return workspace / ".overnight" / "overnight.db"


def best_seq(workspace) -> int:
    run = rows(db(workspace), "select best_experiment from runs")[0]
    return rows(db(workspace), "select seq from experiments where id = ?", [run["best_experiment"]])[0]["seq"]


def test_a_search_run_then_apply_keeps_every_comment_and_line(workspace, cli):
    folder = recipe(workspace)
    settings = folder / "settings.toml"
    original = settings.read_text()
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    assert settings.read_text() == original  # a run never writes the user's file
    seq = best_seq(workspace)
    assert seq > 0

    applied = cli("apply", f"1:{seq}")
    assert applied.exit_code == 0, applied.output
    after = settings.read_text()
    changed = [(a, b) for a, b in zip(original.splitlines(), after.splitlines()) if a != b]
    # Same number of lines, only declared keys differ, and each keeps its comment.
    assert len(after.splitlines()) == len(original.splitlines())
    assert changed and all(a.split("=")[0] == b.split("=")[0] for a, b in changed)
    assert {a.split("=")[0].strip() for a, _ in changed} <= {"learning_rate", "kind", "epochs"}
    assert "# how fast it learns" in after and "# Settings for the nightly job. Keep this comment!" in after
    assert 'seed = 42              # never changes' in after
    # The previous version is kept.
    backups = list((workspace / ".overnight" / "backups").glob("settings.toml.*"))
    assert len(backups) == 1 and backups[0].read_text() == original


def test_values_are_written_readably(workspace, cli):
    folder = recipe(workspace, budget="experiments = 8")
    assert cli("run", folder, "--yes").exit_code == 0
    for e in experiments(db(workspace))[1:]:
        values = json.loads(e["meta"])["values"]
        view = rows(db(workspace), "select view from candidates where digest = ?", [e["candidate"]])[0]["view"]
        line = next(x for x in view.splitlines() if x.startswith("learning_rate"))
        number = line.split("=")[1].split("#")[0].strip()
        digits = number.split("e")[0].replace("-", "").replace(".", "").lstrip("0")
        assert len(digits) <= 6, number  # 6 significant digits at most
        assert float(number) == pytest.approx(values["model.learning_rate"], rel=1e-5)
        assert f"epochs = {values['train.epochs']}\n" in view


JSON_SETTINGS = """{
  "name": "nightly",
  "model": {
    "learning_rate": 0.01,
    "kind": "linear"
  },
  "train": {"epochs": 10, "seed": 42}
}
"""


def test_a_json_file_changes_only_the_characters_of_its_values(workspace, cli):
    # The scorer reads JSON with Python this time.
    folder = recipe(
        workspace, path="settings.json", content=JSON_SETTINGS, budget="experiments = 6",
        metric='kind = "python"\nfile = "score.py"\ngoal = "minimize"',
        files={"score.py": """
            import json, math

            def score(path):
                d = json.load(open(path))
                r, k, e = d["model"]["learning_rate"], d["model"]["kind"], d["train"]["epochs"]
                return math.log(r / 0.001) ** 2 + (k != "tree") + (e - 30) ** 2 / 100
            """},
    )
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    seq = best_seq(workspace)
    assert cli("apply", f"1:{seq}").exit_code == 0
    after = (folder / "settings.json").read_text()
    data = json.loads(after)
    meta = json.loads(rows(db(workspace), "select meta from experiments where seq = ?", [seq])[0]["meta"])["values"]
    assert data["model"]["kind"] == meta["model.kind"] and data["train"]["epochs"] == meta["train.epochs"]
    assert data["name"] == "nightly" and data["train"]["seed"] == 42
    # The layout is the person's: the same lines, the inline "train" table still inline.
    assert len(after.splitlines()) == len(JSON_SETTINGS.splitlines())
    assert after.splitlines()[6].startswith('  "train": {"epochs": ')


def proposals(*items) -> str:
    return "".join(json.dumps(i) + "\n" for i in items)


def test_the_check_lets_only_declared_keys_change_within_bounds(workspace, cli):
    edit = lambda old, new, why: {"replace": [old, new], "rationale": why}  # noqa: E731
    folder = recipe(workspace, agent='kind = "scripted"\nfile = "proposals.jsonl"', files={"proposals.jsonl": proposals(
        edit("seed = 42", "seed = 7", "change an undeclared key"),
        edit("epochs = 10", "epochs = 70", "too many epochs"),
        edit("epochs = 10", "epochs = 12.5", "half an epoch"),
        edit('kind = "linear"', 'kind = "forest"', "an unknown kind"),
        edit("learning_rate = 0.01", 'learning_rate = "fast"', "a word for a number"),
        edit("[train]", "[train", "broken TOML"),
        edit("title = \"nightly\"\n", "", "drop a key"),
        edit('kind = "linear"', 'kind = "tree"', "a valid change"),
    )})
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert [e["status"] for e in exps] == ["baseline"] + ["invalid"] * 7 + ["keep"]
    reasons = [e["reason"] for e in exps[1:8]]
    assert "it changes 'train.seed', which is not a declared parameter" in reasons[0]
    assert "train.epochs = 70 is above its max 50" in reasons[1]
    assert "train.epochs = 12.5 is not a whole number" in reasons[2]
    assert 'model.kind = "forest" is not one of its choices ("linear", "tree")' in reasons[3]
    assert 'model.learning_rate = "fast" is not a number' in reasons[4]
    assert "it is not valid TOML" in reasons[5] and "line 8" in reasons[5]
    assert "it changes 'title', which is not a declared parameter" in reasons[6]


def test_the_rules_name_each_key_and_its_bounds(workspace):
    from overnight.plugins.config import ConfigSurface
    from overnight.core.recipe import load

    folder = recipe(workspace)
    surface = load(folder).surface.build(folder)
    assert isinstance(surface, ConfigSurface)
    rules = surface.rules()
    assert "model.learning_rate: a number from 0.0001 to 0.1" in rules
    assert 'model.kind: one of "linear", "tree"' in rules
    assert "train.epochs: a whole number from 1 to 50" in rules
    assert [p.name for p in surface.parameters()] == ["model.learning_rate", "model.kind", "train.epochs"]
    assert surface.values_of(surface.read()) == {"model.learning_rate": 0.01, "model.kind": "linear", "train.epochs": 10}


def test_each_text_is_parsed_once_however_often_it_is_read(workspace, monkeypatch):
    """A run reads each candidate several times (its check against the base, its values): the file's
    parser sees each text once, and the answers stay what they were."""
    import tomlkit

    from overnight.core.recipe import load
    from overnight.plugins import config

    folder = recipe(workspace)
    surface = load(folder).surface.build(folder)
    config._parsed.cache_clear()  # other tests read the same text
    parsed = []
    parse = tomlkit.parse
    monkeypatch.setattr(tomlkit, "parse", lambda text: parsed.append(text) or parse(text))
    base = surface.read()
    assert parsed == [base]
    view = surface.view_from({"train.epochs": 12}, base)
    undeclared = base.replace("seed = 42", "seed = 7")
    parsed.clear()  # view_from edits a document of its own
    for _ in range(3):
        assert surface.problems(view, base) == []
        assert surface.values_of(view)["train.epochs"] == 12
        assert surface.problems(undeclared, base) == ["it changes 'train.seed', which is not a declared parameter"]
        assert surface.values_of(base)["train.epochs"] == 10
    assert sorted(parsed) == sorted([view, undeclared])  # the base was parsed when it was read


# -- bad input: one sentence, a non-zero exit, nothing written, nothing recorded ----------------


def refused(workspace, cli, folder, *phrases):
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0, result.output
    assert no_traceback(result.output)
    for phrase in phrases:
        assert phrase in result.output, result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not db(workspace).exists() or not rows(db(workspace), "select id from runs")
    return result


def test_a_key_path_that_is_not_in_the_file(workspace, cli):
    folder = recipe(workspace, params='[{ key = "model.momentum", min = 0, max = 1 }]')
    refused(workspace, cli, folder, "has no key 'model.momentum'", "settings.toml")


def test_min_larger_than_max(workspace, cli):
    folder = recipe(workspace, params='[{ key = "train.epochs", min = 50, max = 1, integer = true }]')
    refused(workspace, cli, folder, "params #1 (train.epochs): 'min' (50) is larger than 'max' (1)")


def test_an_unknown_file_type(workspace, cli):
    folder = recipe(workspace, path="settings.yaml", content="epochs: 10\n", params='[{ key = "epochs", min = 1, max = 5 }]')
    refused(workspace, cli, folder, "'settings.yaml' is neither .toml nor .json")


def test_a_missing_config_file(workspace, cli):
    folder = recipe(workspace)
    (folder / "settings.toml").unlink()
    refused(workspace, cli, folder, "settings.toml does not exist")


def test_a_file_that_is_not_valid_toml(workspace, cli):
    folder = recipe(workspace, content="[model\nlearning_rate = 1\n")
    refused(workspace, cli, folder, "settings.toml is not valid TOML")


def test_a_number_range_on_a_key_that_holds_text(workspace, cli):
    folder = recipe(workspace, params='[{ key = "model.kind", min = 0, max = 1 }]')
    refused(workspace, cli, folder, "The key 'model.kind'", "holds 'linear', not a number")


def test_a_param_entry_with_an_unknown_key(workspace, cli):
    folder = recipe(workspace, params='[{ key = "train.epochs", minimum = 1, max = 5 }]')
    refused(workspace, cli, folder, "params #1", "unknown key 'minimum'", "did you mean 'min'?")


def test_a_param_with_neither_bounds_nor_choices(workspace, cli):
    folder = recipe(workspace, params='[{ key = "train.epochs" }]')
    refused(workspace, cli, folder, "params #1 (train.epochs): declare 'min' and 'max' (the range the value may take), or 'choices'")
