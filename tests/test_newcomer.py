"""What a newcomer reading the README top to bottom ran into: `recipes show` saying a recipe that
notifies sends nothing, a plural refusal for one recipe, a frontier of "0 candidates" for a
metric that scores no examples, and README examples and tables that were not true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write


def test_config_shows_the_urls_with_their_passwords_masked(cli):
    cli("config", "set", "notify.urls", "ntfys://my-topic", "mailto://me:app-password@gmail.com")
    shown = cli("config").output
    assert 'urls = ["ntfys://my-topic", "mailtos://me:****@gmail.com/"]' in shown  # as apprise reads it
    assert "app-password" not in shown


TAGLINE = {
    "recipe.toml": """
        [recipe]
        name = "tagline"

        [surface]
        kind = "text"
        path = "tagline.txt"

        [metric]
        kind = "text-stats"
        stat = "characters"
        goal = "minimize"

        [agent]
        kind = "scripted"
        file = "ideas.jsonl"
        """,
    "tagline.txt": "Overnight is a tool that improves what you own.\n",
    "ideas.jsonl": '{"view": "Overnight improves what you own.\\n", "rationale": "shorter"}\n',
}


def test_recipes_show_counts_notifications_as_data_sent_out(cli, workspace):
    files = dict(TAGLINE)
    files["recipe.toml"] += ('\n[notify]\nurls = ["ntfys://my-topic", "mailto://me:app-password@gmail.com"]\n')
    write(workspace / "tagline", files)
    shown = cli("recipes", "show", "tagline").output
    assert "nobody" not in shown and "sends nothing" not in shown
    assert "Sends data to:\n  [notify]: sends the run's news (its name, scores and times) to ntfys://my-topic\n" \
           "  [notify]: sends the run's news (its name, scores and times) to mailtos://me:****@gmail.com/\n" in shown
    assert "app-password" not in shown  # nor in the recipe.toml it prints
    assert "Trust: not trusted yet" in shown


def test_a_recipe_that_only_notifies_asks_for_trust_before_it_runs(cli, workspace):
    """A cloned recipe run in place would otherwise send its news to its author's host unasked."""
    files = dict(TAGLINE)
    files["recipe.toml"] += '\n[notify]\nurls = ["json://127.0.0.1:9/news"]\n'
    write(workspace / "tagline", files)
    refused = cli("run", "tagline")
    assert refused.exit_code != 0 and "Recipe 'tagline' sends notifications" in refused.output, refused.output
    assert cli("status").output.startswith("No runs in ")


def test_recipes_show_says_nobody_when_a_recipe_neither_calls_a_model_nor_notifies(cli, workspace):
    write(workspace / "tagline", TAGLINE)
    assert "Sends data to: nobody (it calls no model)." in cli("recipes", "show", "tagline").output


def test_a_night_refusing_one_untrusted_recipe_says_it_in_the_singular(workspace):
    write(workspace / "sim", {
        "recipe.toml": """
            [recipe]
            name = "sim"

            [surface]
            kind = "text"
            path = "x.txt"

            [metric]
            kind = "command"
            run = "wc -c < {file}"
            goal = "minimize"

            [agent]
            kind = "scripted"
            file = "ideas.jsonl"
            """,
        "x.txt": "xxxx\n",
        "ideas.jsonl": '{"view": "x\\n"}\n',
    })
    done = subprocess.run([sys.executable, "-m", "overnight.cli.main", "night", "sim"], cwd=workspace,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: Recipe 'sim' runs commands or code and you have not trusted it: "
                                  "review and trust it with `overnight recipes trust sim`, or start the night with --yes.")
    trusted = subprocess.run([sys.executable, "-m", "overnight.cli.main", "night", "sim", "--yes"], cwd=workspace,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert trusted.returncode == 0 and "Night 1 (finished): 1 recipe, " in trusted.stdout, trusted.stdout + trusted.stderr


def test_show_frontier_on_a_metric_without_examples_says_there_is_none(cli, workspace):
    write(workspace / "tagline", TAGLINE)
    assert cli("run", "tagline", "--yes").exit_code == 0
    shown = cli("show", "1:1", "--frontier").output
    assert shown.rstrip().endswith(
        "Run 1 has no frontier: its metric scores no train examples one by one, so no candidate leads on any.")
    assert "0 candidates" not in shown


README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_recipe_reference_is_a_valid_recipe_beside_the_demo_workbook(cli, workspace):
    import shutil

    from overnight.recipes import folder

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Recipe reference"):]
    block = section[section.index("```toml\n") + len("```toml\n"):section.index("```\n", section.index("```toml\n") + 1)]
    write(workspace / "ref", {"recipe.toml": block})
    shutil.copy(folder("pricing") / "pricing.xlsx", workspace / "ref" / "pricing.xlsx")
    checked = cli("recipes", "validate", "ref")
    assert checked.exit_code == 0 and "is a valid recipe 'pricing'" in checked.output
    assert 'kind = "ray"' in block and "pip install 'overnight[ray]'" in block
    target = float(block.split("\ntarget = ")[1].split()[0])
    assert 14393.25 < target < 24919.33  # above the demo's baseline, below its best possible profit


def test_the_readme_commands_section_names_every_option_of_every_command():
    import click

    from overnight.cli.main import cli as group

    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Commands"):text.index("## Writing a plugin")]
    ctx = click.Context(group)
    missing = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        rows = [line for line in table.splitlines() if f"`overnight {name}" in line or f"`{name} " in line
                or f"`{name}`" in line]
        row = " ".join(rows)
        assert row, f"the Commands section has no row for `overnight {name}`"
        for param in command.params:
            if isinstance(param, click.Option) and "--db" not in param.opts and "--help" not in param.opts:
                if not any(opt in row for opt in param.opts):
                    missing.append(f"{name} {param.opts[-1]}")
        if isinstance(command, click.Group):
            missing += [f"{name} {sub}" for sub in command.list_commands(ctx)
                        if not re.search(rf"[`|[]{sub}[`\\\] ]", row)]  # `trust`, `index add`, [set\|edit]
    assert not missing, f"options the README's Commands section does not name: {missing}"
