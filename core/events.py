"""What the loop publishes; the CLI display, the TUI and plugins subscribe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

RUN_STARTED = "run_started"
EXPERIMENT_STARTED = "experiment_started"
EXPERIMENT_FINISHED = "experiment_finished"
NEW_BEST = "new_best"
RUN_FINISHED = "run_finished"


@dataclass
class Event:
    kind: str
    run_id: int
    data: dict[str, Any] = field(default_factory=dict)


class Events:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        self._subscribers.append(fn)

    def publish(self, kind: str, run_id: int, **data: Any) -> None:
        event = Event(kind, run_id, data)
        for fn in list(self._subscribers):
            fn(event)
