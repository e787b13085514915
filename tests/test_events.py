"""Watching a run never stops it: a plugin's `overnight_event` hook or an agent's `observe`
that raises is reported as a warning, and the run goes on with its store and its best in
agreement. Events are typed records, published after the store and the best have moved."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from overnight.core import plugins
from tests.data.core.kit import experiments, recipe, rows


@pytest.fixture
def raising_plugin(monkeypatch, workspace) -> Path:
    """The misbehaving plugin, registered through the real plugin manager; returns its event log."""
    log = workspace / "events.jsonl"
    monkeypatch.setenv("OVERNIGHT_PLUGINS", "tests.data.core.raising_events")
    monkeypatch.setenv("RAISING_EVENTS_LOG", str(log))
    plugins.registry.cache_clear()
    yield log
    plugins.registry.cache_clear()


def the_run(workspace: Path) -> dict:
    return rows(workspace / ".overnight" / "overnight.db", "select * from runs order by id desc limit 1")[0]


def test_an_event_hook_that_raises_is_reported_and_the_keep_is_the_runs_best(workspace, cli, raising_plugin, caplog):
    folder = recipe(workspace / "r", proposals=["hello, world\n", "hi\n"])

    with caplog.at_level(logging.WARNING, logger="overnight"):
        result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    assert ("Warning: the plugin 'tests.data.core.raising_events' failed on the new best event: "
            "ValueError: cannot celebrate 13.0; the run goes on (further failures like this one are not shown).") in result.output
    assert "Traceback" not in result.output
    assert "Traceback" in caplog.text and "cannot celebrate 13.0" in caplog.text  # the log keeps the why
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "keep", "discard"]
    run = the_run(workspace)
    assert run["status"] == "finished" and run["stop_reason"] == "the agent has no more proposals"
    assert (run["best_experiment"], run["best_score"]) == (exps[1]["id"], 13.0)
    assert "Kept 1 of 2 experiments" in result.output and "baseline 6 -> best 13" in result.output


def test_the_hook_hears_typed_events_after_the_best_has_moved(workspace, cli, raising_plugin):
    folder = recipe(workspace / "r", proposals=["hello, world\n", "hi\n"])
    assert cli("run", folder, "--yes").exit_code == 0

    heard = [json.loads(line) for line in raising_plugin.read_text().splitlines()]
    assert [e["type"] for e in heard] == ["RunStarted", "ExperimentStarted", "ExperimentFinished", "NewBest",
                                          "ExperimentStarted", "ExperimentFinished", "RunFinished"]
    assert [e["kind"] for e in heard][:4] == ["run_started", "experiment_started", "experiment_finished", "new_best"]
    kept, discarded = heard[2], heard[5]
    # Told of the keep, the run's best is already the keep.
    assert (kept["seq"], kept["status"], kept["score"], kept["best"]) == (1, "keep", 13.0, 13.0)
    assert (discarded["seq"], discarded["status"], discarded["best"]) == (2, "discard", 13.0)
    assert heard[4]["rationale"] == "idea 2"
    assert len({e["run_id"] for e in heard}) == 1


def test_an_agent_whose_observe_raises_is_reported_and_the_run_goes_on(workspace, cli, raising_plugin):
    folder = recipe(workspace / "r", proposals=["hello, world\n", "hi\n", "hello, world!!\n"],
                    agent='kind = "grumpy"\nfile = "proposals.jsonl"')

    result = cli("run", folder, "--yes")

    assert result.exit_code == 0, result.output
    # Said once, not after every experiment.
    assert result.output.count("Warning: the agent") == 1
    assert ("Warning: the agent 'grumpy' failed when told of experiment 1: RuntimeError: grumpy about experiment 1; "
            "the run goes on (further failures like this one are not shown).") in result.output
    exps = experiments(workspace / ".overnight" / "overnight.db")
    assert [e["status"] for e in exps] == ["baseline", "keep", "discard", "keep"]
    run = the_run(workspace)
    assert run["status"] == "finished"
    assert (run["best_experiment"], run["best_score"]) == (exps[3]["id"], 15.0)


def test_a_subscriber_that_raises_does_not_stop_the_others(workspace):
    from overnight.core.events import Events, NewBest, Warned

    events, heard = Events(), []

    def broken(event):
        raise KeyError("no such widget")

    events.subscribe(broken, name="the broken display")
    events.subscribe(heard.append)
    events.publish(NewBest(7, seq=3, score=1.5))
    events.publish(NewBest(7, seq=4, score=2.5))

    assert heard == [
        Warned(7, "the broken display failed on the new best event: KeyError: 'no such widget'; the run goes on "
                  "(further failures like this one are not shown)"),
        NewBest(7, seq=3, score=1.5),
        NewBest(7, seq=4, score=2.5),  # its second failure is only logged
    ]
