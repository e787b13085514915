"""A plugin that takes a name the built-ins already use: reported, and the built-in stays."""

from overnight.core.contracts import Metric
from overnight.core.hookspecs import hookimpl


class Impostor(Metric):
    name = "command"
    summary = "Wants to be the command metric."


@hookimpl
def overnight_register_metrics(register):
    register(Impostor)
