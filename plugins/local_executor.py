"""The `local` executor: measurements in fresh work folders on this machine (the default)."""

from __future__ import annotations

from overnight.api import hookimpl
from overnight.core.executor import LocalExecutor


class Local(LocalExecutor):
    """`[executor] kind = "local"`: what a recipe without an [executor] section gets."""

    name = "local"
    summary = "measures on this machine, in a fresh work folder each time"
    options: dict = {}
    runs_code = uses_llm = False  # the metrics run code and call models, not where they run

    @classmethod
    def create(cls, options, recipe, surface, objective) -> "Local":
        return cls(surface, objective)


@hookimpl
def overnight_register_executors(register):
    register(Local)
