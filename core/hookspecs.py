"""The hooks a plugin may implement. Built-ins use exactly these.

A plugin module marks its implementations with `hookimpl` (from `overnight.api`) and
is listed in the `overnight` entry-point group; `core/plugins.py` finds and loads it.
"""

import pluggy

hookspec = pluggy.HookspecMarker("overnight")
hookimpl = pluggy.HookimplMarker("overnight")


@hookspec
def overnight_register_surfaces(register):
    """Call register(SurfaceClass) for each surface the plugin provides.

    A class that is not a `Surface`, has no `name`, takes a name already registered or
    leaves out a method it must write is refused; `overnight plugins` shows why."""


@hookspec
def overnight_register_metrics(register):
    """Call register(MetricClass) for each metric the plugin provides (refused as above)."""


@hookspec
def overnight_register_agents(register):
    """Call register(AgentClass) for each agent the plugin provides (refused as above)."""


@hookspec
def overnight_register_executors(register):
    """Call register(ExecutorClass) for each place measurements can run (a [executor] kind).

    The class subclasses `Executor` (core/contracts.py) and has `name`, `summary`, `options`
    (the keys of its [executor] table) and a classmethod `create(options, recipe, surface,
    objective)` that returns a ready executor or raises `OvernightError` with one sentence
    (a cluster that cannot be reached) before anything is spent."""


@hookspec
def overnight_register_commands(cli):
    """Add click commands to the `overnight` command group."""


@hookspec
def overnight_event(event):
    """Observe what a run does; `event` is one of the typed records of `overnight.core.events`:
    `RunStarted` (recipe, budget), `ExperimentStarted` (seq, rationale), `ExperimentFinished`
    (seq, status, reason, score, and the run's best, already moved on a keep), `NewBest` (seq,
    score), `RunFinished` (summary) or `Warned` (message); each has `run_id` and `kind`.
    The event carries what it tells: a keep is in the store when it is told, any other
    experiment of a run with one in flight only once the next command runs.

    Called in the run's thread as the event happens: return quickly, and leave slow work
    (a notification over the network) to a thread of your own. An exception is reported
    as a warning naming the plugin and never stops the run."""
