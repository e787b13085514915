"""A plugin whose command hook raises: `overnight --help` must still work, naming it."""

from overnight.core.hookspecs import hookimpl


@hookimpl
def overnight_register_commands(cli):
    raise RuntimeError("this plugin's commands are broken")
