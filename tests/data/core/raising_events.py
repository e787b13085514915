"""A test plugin that misbehaves while it watches: its `overnight_event` hook raises on each
new best, and its agent `grumpy` (the scripted agent) raises whenever it is told an outcome.

Registered through OVERNIGHT_PLUGINS=tests.data.core.raising_events. Each event it hears is
written, typed, to the JSONL file named by $RAISING_EVENTS_LOG.
"""

from __future__ import annotations

import dataclasses
import json
import os

from overnight.core.events import NewBest
from overnight.core.hookspecs import hookimpl
from overnight.plugins.scripted import ScriptedAgent


class GrumpyAgent(ScriptedAgent):
    name = "grumpy"
    summary = "The scripted agent, except that it raises when told how a proposal did."

    def observe(self, attempt):
        raise RuntimeError(f"grumpy about experiment {attempt.seq}")


@hookimpl
def overnight_register_agents(register):
    register(GrumpyAgent)


@hookimpl
def overnight_event(event):
    log = os.environ.get("RAISING_EVENTS_LOG")
    if log:
        fields = {k: v for k, v in dataclasses.asdict(event).items() if k not in ("budget", "summary")}
        with open(log, "a") as f:
            f.write(json.dumps({"type": type(event).__name__, "kind": event.kind, **fields}) + "\n")
    if isinstance(event, NewBest):
        raise ValueError(f"cannot celebrate {event.score}")
