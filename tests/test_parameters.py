"""One parameter module for every surface: a declaration becomes a `Parameter` or one sentence
saying what is wrong; a value is checked, a sampler's value snapped, and a parameter described
the same way for config keys and spreadsheet cells."""

from __future__ import annotations

import pytest

from overnight.core import parameters
from overnight.core.contracts import Parameter
from tests.conftest import write
from tests.data.core.kit import no_traceback
from tests.data.workbooks.kit import book


def declared(**values) -> Parameter:
    return parameters.declare("x", parameters.read(values, {}, "{ min = 0, max = 1 }"))


def refused(**values) -> str:
    with pytest.raises(parameters.Invalid) as err:
        declared(**values)
    return str(err.value)


def test_a_declaration_becomes_a_typed_parameter():
    assert declared(min=0, max=1) == Parameter("x", min=0, max=1)
    assert declared(min=1, max=9, step=2, integer=True) == Parameter("x", min=1, max=9, step=2, integer=True)
    assert declared(min=1.0, max=9.0, integer=True).max == 9 and isinstance(declared(min=1.0, max=9.0, integer=True).max, int)
    assert declared(min=0.001, max=1, log=True).log
    assert declared(choices=["a", 1, True]).choices == ("a", 1, True)


@pytest.mark.parametrize("values, sentence", [
    ({}, "declare 'min' and 'max' (the range the value may take), or 'choices'"),
    ({"min": 0}, "declare 'min' and 'max'"),
    ({"min": 2, "max": 1}, "'min' (2) is larger than 'max' (1)"),
    ({"min": 0, "max": 1, "step": 0}, "'step' must be above 0, not 0"),
    ({"min": 0, "max": float("inf")}, "'max' must be a finite number, not inf"),
    ({"min": 0.5, "max": 3, "integer": True}, "an integer parameter needs whole numbers for 'min', 'max' and 'step'"),
    ({"min": 0, "max": 1, "log": True}, "a log scale needs 'min' above 0, not 0"),
    ({"min": 0.1, "max": 1, "step": 0.1, "log": True}, "parameter 'x' cannot have both a step and a log scale"),
    ({"choices": []}, "'choices' is empty"),
    ({"choices": ["a"], "min": 0}, "give either 'choices' or 'min' and 'max', not both"),
    ({"choices": ["a", "a"]}, "'choices' lists the same value twice"),
    ({"choices": [[1, 2]]}, "a choice must be a number, text or true/false, not [1, 2]"),
    ({"min": "low", "max": 1}, "'min' must be a number, not 'low'"),
    ({"min": 0, "max": 1, "stp": 1}, "unknown key 'stp' (did you mean 'step'?)"),
])
def test_a_declaration_that_cannot_be_searched_is_one_sentence(values, sentence):
    assert refused(**values).startswith(sentence)


def test_an_entry_that_is_not_a_table_says_what_one_looks_like():
    with pytest.raises(parameters.Invalid, match=r"each entry must be a table such as \{ key = 1 \}"):
        parameters.read(3, {}, "{ key = 1 }")


def test_an_integer_with_a_step_of_one_may_be_searched_on_a_log_scale():
    assert declared(min=1, max=1024, step=1, integer=True, log=True).log


@pytest.mark.parametrize("p, value, problem", [
    (Parameter("n", min=5, max=60, step=0.5), 70, "n = 70 is above its max 60"),
    (Parameter("n", min=5, max=60, step=0.5), 4.5, "n = 4.5 is below its min 5"),
    (Parameter("n", min=5, max=60, step=0.5), 19.3, "n = 19.3 is not on its steps of 0.5 from 5"),
    (Parameter("n", min=5, max=60), "cheap", 'n = "cheap" is not a number'),
    (Parameter("n", min=5, max=60), True, "n = true is not a number"),
    (Parameter("n", min=5, max=60), float("nan"), "n = nan is not a finite number"),
    (Parameter("n", min=1, max=9, integer=True), 2.5, "n = 2.5 is not a whole number"),
    (Parameter("c", choices=("a", "b")), "z", 'c = "z" is not one of its choices ("a", "b")'),
    (Parameter("c", choices=(1, 2)), True, "c = true is not one of its choices (1, 2)"),
])
def test_a_value_a_parameter_does_not_accept_is_named_with_the_reason(p, value, problem):
    assert parameters.problem(p, value) == problem


def test_values_a_parameter_accepts_have_no_problem():
    assert parameters.problem(Parameter("n", min=5, max=60, step=0.5), 19.5) is None
    assert parameters.problem(Parameter("n", min=1, max=9, integer=True), 3.0) is None
    assert parameters.problem(Parameter("c", choices=(1, 2)), 2.0) is None
    assert parameters.problem(Parameter("n", min=0, max=1, step=0.1), 0.30000000000000004) is None


def test_a_samplers_value_is_snapped_as_a_person_would_write_it():
    step = Parameter("n", min=5, max=60, step=0.5)
    assert parameters.snap(step, 23.700000000000003) == 23.5
    assert parameters.snap(step, 99) == 60 and parameters.snap(step, -3) == 5
    assert parameters.snap(Parameter("n", min=0, max=1, step=0.1), 0.30000000000000004) == 0.3
    # A range that is not a whole number of steps ends at its last step.
    assert parameters.snap(Parameter("n", min=0, max=1, step=0.3), 0.99) == 0.9
    assert parameters.snap(Parameter("n", min=0, max=20000, step=100, integer=True), 1234.5) == 1200
    assert parameters.snap(Parameter("n", min=1, max=9, integer=True), 7.0) == 7
    assert isinstance(parameters.snap(Parameter("n", min=1, max=9, integer=True), 7.0), int)
    assert parameters.snap(Parameter("r", min=0.0001, max=0.1, log=True), 0.0123456789) == 0.0123457
    assert parameters.snap(Parameter("c", choices=("a", "b")), "b") == "b"


def test_a_numpy_value_from_a_sampler_becomes_plain_python():
    numpy = pytest.importorskip("numpy")
    value = parameters.snap(Parameter("n", min=1, max=9, integer=True), numpy.int64(4))
    assert value == 4 and type(value) is int


def test_a_parameter_is_described_in_the_words_the_rules_use():
    assert parameters.describe(Parameter("n", min=5, max=60, step=0.5)) == "a number from 5 to 60 in steps of 0.5"
    assert parameters.describe(Parameter("n", min=1, max=50, integer=True)) == "a whole number from 1 to 50"
    assert parameters.describe(Parameter("r", min=0.001, max=1, log=True)) == "a number from 0.001 to 1 (log scale)"
    assert parameters.describe(Parameter("c", choices=("monthly", "yearly", True))) == 'one of "monthly", "yearly", true'


def test_the_place_of_a_declaration_names_its_line_in_the_recipe(tmp_path):
    (tmp_path / "recipe.toml").write_text('[surface]\nkind = "config"\nparams = [\n  { key = "a.b", min = 0, max = 1 },\n]\n')
    assert parameters.where(tmp_path, "params", 1, "a.b") == f"{tmp_path / 'recipe.toml'}:4: [surface] params #1 (a.b)"
    assert parameters.where(tmp_path, "params", None, None) == f"{tmp_path / 'recipe.toml'}:3: [surface] params"


# -- the same declaration means the same thing on both surfaces -----------------------------


CONFIG_RECIPE = """
[recipe]
name = "job"

[surface]
kind = "{kind}"
path = "{path}"
{key} = [
  {entries}
]

[metric]
kind = "command"
run = "wc -c < {{file}}"

[agent]
kind = "search"
"""


@pytest.mark.parametrize("entry, sentence", [
    ("min = 0.1, max = 1, step = 0.1, log = true", "cannot have both a step and a log scale"),
    ("min = 0.5, max = 3, integer = true", "an integer parameter needs whole numbers for 'min', 'max' and 'step'"),
    ('choices = ["a", "a"]', "'choices' lists the same value twice"),
    ("min = 3, max = 1", "'min' (3) is larger than 'max' (1)"),
])
def test_config_keys_and_spreadsheet_cells_refuse_the_same_declarations_alike(workspace, cli, entry, sentence):
    book(workspace / "sheet" / "book.xlsx", {"S": {"A1": 1, "B1": "=A1"}})
    write(workspace / "sheet", {"recipe.toml": CONFIG_RECIPE.format(
        kind="spreadsheet", path="book.xlsx", key="cells", entries=f'{{ ref = "S!A1", {entry} }},')})
    write(workspace / "conf", {"settings.toml": "[a]\nb = 1\n", "recipe.toml": CONFIG_RECIPE.format(
        kind="config", path="settings.toml", key="params", entries=f'{{ key = "a.b", {entry} }},')})
    for folder, where in (("sheet", "[surface] cells #1 (S!A1): "), ("conf", "[surface] params #1 (a.b): ")):
        lines = (workspace / folder / "recipe.toml").read_text().splitlines()
        number = next(n for n, text in enumerate(lines, 1) if entry in text)
        result = cli("run", workspace / folder, "--yes")
        assert result.exit_code != 0 and no_traceback(result.output), result.output
        line = next(x for x in result.output.splitlines() if "Error:" in x)
        assert f"recipe.toml:{number}: {where}" in line and sentence in line, result.output
