"""Messages the app's workers send to the screens."""

from __future__ import annotations

from textual.message import Message


class RunStarted(Message):
    """`overnight run --tui`: the loop recorded its run; the dashboard can open it."""

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id


class RunEnded(Message):
    """`overnight run --tui`: the loop returned (summary) or failed (error, one sentence)."""

    def __init__(self, summary=None, error: str = "") -> None:
        super().__init__()
        self.summary = summary
        self.error = error
