"""The hooks a plugin may implement. Built-ins use exactly these."""

import pluggy

hookspec = pluggy.HookspecMarker("overnight")
hookimpl = pluggy.HookimplMarker("overnight")


@hookspec
def overnight_register_surfaces(register):
    """Call register(SurfaceClass) for each surface the plugin provides."""


@hookspec
def overnight_register_metrics(register):
    """Call register(MetricClass) for each metric the plugin provides."""


@hookspec
def overnight_register_agents(register):
    """Call register(AgentClass) for each agent the plugin provides."""


@hookspec
def overnight_register_commands(cli):
    """Add click commands to the `overnight` command group."""


@hookspec
def overnight_event(event):
    """Observe what the loop does (an `overnight.core.events.Event`)."""
