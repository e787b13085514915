"""What a plugin author needs, in one import: `from overnight.api import Metric, Measurement, hookimpl`.

Everything here is kept stable across minor versions; the modules behind it
(`overnight.core.*`) may move. A plugin module implements one or more hooks with
`@hookimpl` and is listed in the `overnight` entry-point group of its package:

    overnight_register_surfaces(register)   register(SurfaceClass) for each surface it provides
    overnight_register_metrics(register)    register(MetricClass) for each metric
    overnight_register_agents(register)     register(AgentClass) for each agent
    overnight_register_commands(cli)        add click commands to the `overnight` group
    overnight_event(event)                  observe what the loop does (an `Event`)

The three methods an author must write are `Surface.read` (with `source`,
`materialize` and `apply`), `Metric.measure` and `Agent.propose`; their docstrings
in `overnight.core.contracts` say what each may read and write, its time limit,
and which threads call it. A plugin with `uses_llm = True` reaches models through
its `self.llm`, a `Gateway`, and nothing else.
"""

from overnight.core.contracts import (
    Agent,
    Attempt,
    Context,
    ExampleResult,
    LLMCall,
    Measurement,
    MeasureRequest,
    Metric,
    Parameter,
    ParametricSurface,
    Proposal,
    Surface,
)
from overnight.core.errors import OvernightError
from overnight.core.events import Event
from overnight.core.hookspecs import hookimpl
from overnight.core.llm import BudgetExceeded, Gateway, LLMError, ModelUnavailable, Reply
from overnight.core.options import Option
from overnight.core.textfile import TextFileSurface

__all__ = [
    "Agent",
    "Attempt",
    "BudgetExceeded",
    "Context",
    "Event",
    "ExampleResult",
    "Gateway",
    "LLMCall",
    "LLMError",
    "Measurement",
    "MeasureRequest",
    "Metric",
    "ModelUnavailable",
    "Option",
    "OvernightError",
    "Parameter",
    "ParametricSurface",
    "Proposal",
    "Reply",
    "Surface",
    "TextFileSurface",
    "hookimpl",
]
