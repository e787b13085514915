"""Recipe mistakes: one clear sentence naming the file, the line and the key; a non-zero exit;
no traceback; and nothing of the person's written."""

from __future__ import annotations

from pathlib import Path

import pytest

from overnight.core.errors import OvernightError, RecipeError
from overnight.core.recipe import load, parse
from tests.data.core.kit import experiments, no_traceback, recipe, rows


def run_fails(cli, folder: Path, *args) -> str:
    """Runs a recipe that must be refused; returns the output after checking the common promises."""
    doc = folder / "doc.txt"
    before = doc.read_bytes() if doc.exists() else None
    result = cli("run", folder, "--yes", *args)
    assert result.exit_code != 0, result.output
    assert ("\n" + result.output).count("\nError: ") == 1, result.output
    assert no_traceback(result.output), result.output
    if before is not None:
        assert doc.read_bytes() == before
    return result.output


def no_runs(workspace: Path) -> bool:
    db = workspace / ".overnight" / "overnight.db"
    return not db.exists() or rows(db, "select count(*) n from runs")[0]["n"] == 0


def test_missing_recipe_file(workspace, cli):
    out = run_fails(cli, workspace / "nowhere")
    assert "No recipe at" in out and "nowhere" in out and "recipe.toml" in out
    assert not (workspace / ".overnight").exists()


def test_recipe_folder_without_recipe_toml(workspace, cli):
    (workspace / "empty").mkdir()
    out = run_fails(cli, workspace / "empty")
    assert "No recipe at" in out


def test_malformed_toml_names_line_and_column(workspace, cli):
    folder = recipe(workspace / "r")
    text = (folder / "recipe.toml").read_text().replace('path = "doc.txt"', 'path = "doc.txt')
    (folder / "recipe.toml").write_text(text)
    line = text.splitlines().index('path = "doc.txt') + 1
    out = run_fails(cli, folder)
    assert f"recipe.toml:{line}:" in out
    assert "not valid TOML" in out
    # line:column, both numbers
    where = out.split("recipe.toml:")[1].split(":")
    assert where[0] == str(line) and where[1].isdigit()
    assert no_runs(workspace)


@pytest.mark.parametrize(
    "section, wrong, right",
    [("surface", "txt", "text"), ("metric", "comand", "command"), ("agent", "scriptd", "scripted")],
)
def test_unknown_kind_lists_the_available_ones_and_suggests(workspace, cli, section, wrong, right):
    folder = recipe(workspace / "r")
    toml = folder / "recipe.toml"
    text = toml.read_text()
    old = f'kind = "{right}"'
    assert text.count(old) == 1
    toml.write_text(text.replace(old, f'kind = "{wrong}"'))
    line = toml.read_text().splitlines().index(f'kind = "{wrong}"') + 1
    out = run_fails(cli, folder)
    assert f"recipe.toml:{line}: [{section}] kind: Unknown {section} kind '{wrong}'" in out
    assert f"Did you mean '{right}'?" in out
    assert f"Available: " in out and right in out.split("Available: ")[1]
    assert no_runs(workspace)


def test_unknown_key_suggests_the_closest(workspace, cli):
    folder = recipe(workspace / "r", budget="experimens = 3")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace('path = "doc.txt"', 'paht = "doc.txt"'))
    lines = toml.read_text().splitlines()
    paht, experimens = lines.index('paht = "doc.txt"') + 1, lines.index("experimens = 3") + 1
    out = run_fails(cli, folder)
    # All problems at once, each with its line and key.
    assert f"recipe.toml:{paht}: [surface] paht: unknown key 'paht' (did you mean 'path'?)" in out
    assert f"recipe.toml:{experimens}: [budget] experimens: unknown key 'experimens' (did you mean 'experiments'?)" in out
    assert no_runs(workspace)


@pytest.mark.parametrize("section, old, typo, right", [
    ("metric", 'run = "sh {recipe}/score.sh {file}"', 'gaol = "minimize"', "goal"),
    ("metric", 'run = "sh {recipe}/score.sh {file}"', "wieght = 2", "weight"),
    ("metric", 'run = "sh {recipe}/score.sh {file}"', "rnu = 'x'", "run"),
    ("guards #1", "", "mx = 3", "max"),
    ("surface", 'path = "doc.txt"', 'kidn = "text"', "kind"),
    ("agent", 'file = "proposals.jsonl"', 'fiel = "p.jsonl"', "file"),
    ("budget", "experiments = 3", "experimens = 3", "experiments"),
])
def test_the_keys_an_unknown_key_message_lists_are_every_key_the_section_takes(workspace, section, old, typo, right):
    """The suggestion is among the keys the section takes: the shared ones (goal, weight, min...) and the plugin's own."""
    from overnight.core import recipe as recipes
    from overnight.core.budget import SCHEMA as BUDGET_SCHEMA
    from overnight.core.plugins import registry

    folder = recipe(workspace / "r", budget="experiments = 3", guards='[[guards]]\nkind = "command"\nrun = "sh {recipe}/score.sh {file}"\nmin = 0')
    toml = folder / "recipe.toml"
    text = toml.read_text()
    if section == "guards #1":
        text = text.replace("min = 0", f"min = 0\n{typo}")
    else:
        assert text.count(old) == 1 or section == "metric"
        text = text.replace(old, f"{old}\n{typo}", 1)
    toml.write_text(text)
    with pytest.raises(RecipeError) as err:
        load(folder)
    key = typo.split(" =")[0]
    line = next(ln for ln in str(err.value).splitlines() if f"[{section}] {key}:" in ln)
    assert f"unknown key '{key}' (did you mean '{right}'?); this section takes: " in line, line
    listed = line.split("this section takes: ")[1].rstrip(".").split(", ")
    shared, kind = {"metric": (recipes.METRIC_KEYS, "metric"), "guards #1": (recipes.GUARD_KEYS, "metric"),
                    "surface": (recipes.KIND, "surface"), "agent": (recipes.KIND, "agent")}.get(section, (None, None))
    if shared is None:
        every = set(BUDGET_SCHEMA)
    else:
        name = {"metric": "command", "surface": "text", "agent": "scripted"}[kind]
        every = set(shared) | set(registry().get(kind, name).options)
    assert right in listed and set(listed) == every and listed == sorted(listed)


def test_unknown_section_suggests_the_closest(workspace, cli):
    folder = recipe(workspace / "r")
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace("[budget]", "[bugdet]"))
    out = run_fails(cli, folder)
    assert "unknown section [bugdet] (did you mean [budget]?)" in out


def test_missing_required_key_and_wrong_type(workspace):
    folder = recipe(workspace / "r", budget='parallel = "four"')
    toml = folder / "recipe.toml"
    toml.write_text(toml.read_text().replace('path = "doc.txt"\n', ""))
    with pytest.raises(RecipeError) as err:
        load(folder)
    text = str(err.value)
    assert "[surface]: missing key 'path'" in text
    assert "[budget] parallel: 'parallel' must be a whole number, not 'four'" in text


def test_negative_budget(workspace, cli):
    folder = recipe(workspace / "r", budget="experiments = -1\nper_experiment_seconds = -5")
    lines = (folder / "recipe.toml").read_text().splitlines()
    out = run_fails(cli, folder)
    assert f"recipe.toml:{lines.index('experiments = -1') + 1}: [budget] experiments: 'experiments' must be at least 0, not -1" in out
    assert "[budget] per_experiment_seconds: 'per_experiment_seconds' must be at least" in out
    assert no_runs(workspace)


def test_missing_surface_file(workspace, cli):
    folder = recipe(workspace / "r")
    (folder / "doc.txt").unlink()
    out = run_fails(cli, folder)
    assert "The surface file" in out and "doc.txt does not exist (surface path = 'doc.txt')" in out
    assert not (folder / "doc.txt").exists()
    assert no_runs(workspace)


def test_metric_command_not_found(workspace, cli):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "no-such-scorer --file {file}"')
    out = run_fails(cli, folder)
    assert "The metric command 'no-such-scorer' was not found" in out
    assert no_runs(workspace)


def test_malformed_scripted_file_names_the_line(workspace, cli):
    folder = recipe(workspace / "r", proposals=["a\n", "b\n"])
    with (folder / "proposals.jsonl").open("a") as f:
        f.write('{"view": "c", "rationale": "unfinished"\n')
    out = run_fails(cli, folder)
    assert "proposals.jsonl:3: this line is not valid JSON" in out
    (folder / "proposals.jsonl").write_text('{"view": "a"}\n\n{"replace": ["only one"]}\n')
    out = run_fails(cli, folder)
    assert "proposals.jsonl:3: 'replace' must be a list of two strings: [old, new]" in out
    (folder / "proposals.jsonl").write_text('{"rationale": "no change at all"}\n')
    out = run_fails(cli, folder)
    assert "proposals.jsonl:1: each line needs 'view'" in out
    assert no_runs(workspace)


def test_a_store_that_cannot_be_written(workspace, cli):
    folder = recipe(workspace / "r", proposals=["hello world\n"])
    (workspace / "a-file").write_text("not a folder\n")
    out = run_fails(cli, folder, "--db", workspace / "a-file" / "sub" / "overnight.db")
    assert "Cannot write the store" in out and "a-file is a file, not a folder; nothing was changed" in out
    assert (workspace / "a-file").read_text() == "not a folder\n"


def test_metric_prints_no_number_is_a_crash_and_the_run_goes_on(workspace, cli):
    folder = recipe(workspace / "r", proposals=["NONUM\n", "hello world\n"])
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "crash", "keep"]
    assert exps[1]["reason"] == "the command printed no number"
    assert "no score here" in exps[1]["trace"]


def test_metric_hangs_is_a_timeout_and_the_run_goes_on(workspace, cli):
    folder = recipe(workspace / "r", proposals=["SLEEP\n", "hello world\n"], budget="per_experiment_seconds = 0.5")
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "timeout", "keep"]
    assert exps[1]["reason"] == "took longer than 0.5 s"
    assert exps[1]["seconds"] < 5


def test_metric_crashes_with_its_log_tail_and_the_run_goes_on(workspace, cli):
    noisy = "".join(f'echo "line {i}"\n' for i in range(80))
    folder = recipe(workspace / "r", proposals=["CRASH\n", "hello world\n"],
                    metric='kind = "command"\nrun = "sh {recipe}/chatty.sh {file}"',
                    files={"chatty.sh": noisy + 'sh "$OVERNIGHT_RECIPE_DIR/score.sh" "$1"\n'})
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "crash", "keep"]
    assert exps[1]["reason"].startswith("the command exited with code 3")
    trace = exps[1]["trace"].splitlines()
    assert len(trace) == 50  # the last 50 lines of output
    assert trace[-1] == "boom: CRASH requested" and "line 79" in trace


def test_a_baseline_that_cannot_be_measured_fails_the_run_clearly(workspace, cli):
    folder = recipe(workspace / "r", text="CRASH\n", proposals=["hello world\n"])
    out = run_fails(cli, folder)
    assert "The baseline could not be measured (crash): the command exited with code 3" in out
    run = rows(workspace / ".overnight" / "overnight.db", "select * from runs")[0]
    assert run["status"] == "failed"
    assert run["stop_reason"].startswith("The baseline could not be measured")
    assert experiments(workspace / ".overnight" / "overnight.db") == []
    # The status table keeps to one line per run.
    status = cli("status")
    assert len(status.output.splitlines()) == 2


def test_min_delta_and_k_in_the_metric_section_reach_the_budget(workspace):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "wc -c < {file}"\nmin_delta = 2.5\nk = 3')
    r = load(folder)
    assert r.budget.min_delta == 2.5 and r.budget.k == 3


def test_a_recipe_read_from_text_records_its_digest(workspace):
    folder = recipe(workspace / "r")
    r = load(folder)
    assert r.text == (folder / "recipe.toml").read_text()
    assert len(r.digest) == 64
    again = parse(r.text, folder / "recipe.toml")
    assert again.digest == r.digest


def test_errors_are_overnight_errors_not_crashes(workspace):
    with pytest.raises(OvernightError):
        load(workspace / "missing")


# -- each section becomes a typed part ---------------------------------------------------------

TYPED = """
[recipe]
name = "blurb"
summary = "Shorter and plainer"
version = "1.2"
tags = ["writing"]

[surface]
kind = "text"
path = "doc.txt"

[[metric]]
kind = "text-stats"
stat = "reading_ease"
weight = 2.0
repeats = 3
min_delta = 0.5

[[metric]]
kind = "text-stats"
stat = "words"
goal = "minimize"
label = "length"
k = 1.5

[[guards]]
kind = "text-stats"
stat = "words"
min = 1
max = 80

[agent]
kind = "scripted"
file = "proposals.jsonl"

[budget]
k = 4
"""


def test_each_section_becomes_a_typed_part_and_a_plugin_gets_only_its_own_keys(workspace):
    folder = recipe(workspace / "r")
    (folder / "recipe.toml").write_text(TYPED)
    r = load(folder)
    assert (r.about.name, r.about.summary, r.about.version, r.about.tags) == ("blurb", "Shorter and plainer", "1.2", ["writing"])
    assert (r.name, r.summary) == ("blurb", "Shorter and plainer")
    ease, length = r.metrics
    assert (ease.weight, ease.goal, ease.label, ease.repeats, ease.min_delta, ease.k) == (2.0, "maximize", "text-stats", 3, 0.5, None)
    assert (length.weight, length.goal, length.label, length.repeats, length.min_delta, length.k) == (1.0, "minimize", "length", None, None, 1.5)
    (guard,) = r.guards
    assert (guard.min, guard.max, guard.label, guard.section) == (1, 80, "text-stats", "guards#1")
    # Keys every metric section shares stay out of the plugin's options.
    assert (ease.options["stat"], length.options["stat"], guard.options["stat"]) == ("reading_ease", "words", "words")
    for part in (ease, length, guard):
        assert not {"kind", "goal", "weight", "label", "repeats", "min_delta", "k", "min", "max", "_shared"} & set(part.options)
    # A metric's min_delta counts where [budget] is silent; [budget]'s own k wins over the metric's.
    assert (r.budget.min_delta, r.budget.k) == (0.5, 4)


def test_a_built_metric_has_the_recipes_goal_or_else_its_own(workspace):
    folder = recipe(workspace / "r")
    (folder / "recipe.toml").write_text(TYPED)
    ease, length = (part.build(folder) for part in load(folder).metrics)
    assert (ease.goal, length.goal) == ("maximize", "minimize")
    assert "(minimize)" in length.describe()


def test_an_empty_or_non_table_section_is_reported_with_the_rest(workspace):
    folder = recipe(workspace / "r")
    toml = folder / "recipe.toml"
    text = toml.read_text()
    text = text.replace('[agent]\nkind = "scripted"\nfile = "proposals.jsonl"', "[agent]")
    text = text.replace('[metric]\nkind = "command"\nrun = "sh {recipe}/score.sh {file}"', "")
    toml.write_text("guards = 3\nmetric = [1]\n" + text)
    lines = toml.read_text().splitlines()
    with pytest.raises(RecipeError) as err:
        load(folder)
    problems = err.value.problems
    assert f"{toml}:{lines.index('metric = [1]') + 1}: [metric #1]: each [metric] must be a table of keys." in problems
    assert f"{toml}:{lines.index('[agent]') + 1}: [agent]: missing key 'kind' (which agent plugin to use)." in problems
    assert f"{toml}:1: [guards]: guards must be written as [[guards]] tables." in problems
    assert len(problems) == 3
