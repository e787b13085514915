"""A test plugin: an agent that writes down every context it is given, and an instant metric.

Registered through OVERNIGHT_PLUGINS=tests.data.core.probe (or Registry().load(modules=[...])).
"""

from __future__ import annotations

import json
from pathlib import Path

from overnight.core.contracts import Agent, Measurement, Metric, Proposal
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option


class ProbeAgent(Agent):
    name = "probe"
    summary = "Proposes the views of a JSONL file and writes each context it sees to a log."
    options = {
        "file": Option(str, "proposals, as for scripted", required=True),
        "log": Option(str, "where to write the contexts (JSONL)", required=True),
        "api_key": Option(str, "a key, as a plugin that calls a model would take one", default=""),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.items = [json.loads(x) for x in self.path(self.config["file"]).read_text().splitlines() if x.strip()]
        self.n = 0

    def propose(self, context):
        with open(self.path(self.config["log"]), "a") as f:
            f.write(json.dumps({
                "seq": context.seq, "best_view": context.best_view, "best_score": context.best_score,
                "history": [{"seq": a.seq, "status": a.status, "reason": a.reason, "trace": a.trace} for a in context.history],
                "ledger": [{"seq": a.seq, "status": a.status, "rationale": a.rationale} for a in context.ledger],
                "budget_left": context.budget_left, "rules": context.rules, "metric": context.metric,
            }) + "\n")
        if self.n >= len(self.items):
            return None
        item = self.items[self.n]
        self.n += 1
        if "raise" in item:  # a bug in an agent, on purpose
            raise ValueError(item["raise"])
        return Proposal(view=item["view"], rationale=item.get("rationale", ""), meta={"n": self.n})


class LengthMetric(Metric):
    """Instant and in-process: the length of the file."""

    name = "length"
    summary = "The number of characters of the file (instant, in-process)."
    options = {}

    def measure(self, artifact, folder, request):
        return Measurement(float(len(Path(artifact).read_text())))


@hookimpl
def overnight_register_agents(register):
    register(ProbeAgent)


@hookimpl
def overnight_register_metrics(register):
    register(LengthMetric)


@hookimpl
def overnight_register_commands(cli):
    import click

    @cli.command(name="probe-hello")
    def probe_hello():
        """Says hello (a command added by a plugin)."""
        click.echo("hello from a plugin command")
