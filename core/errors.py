"""The errors meant for people: each carries a sentence the CLI prints as is."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .contracts import LLMCall


class OvernightError(Exception):
    """A user mistake or a condition the user can fix. Never shown with a traceback."""

    def __init__(self, message: str, *, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class RecipeError(OvernightError):
    """A recipe that cannot be used as written; may list several problems."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems), exit_code=2)


# Model errors live here, not in core/llm.py, so the loop can catch them without importing the gateway.
class LLMError(OvernightError):
    """A model call that failed; `call` is the failed call, for the log."""

    def __init__(self, message: str, call: LLMCall | None = None):
        super().__init__(message)
        self.call = call
        self.past_deadline = False  # a timeout the deadline caused: the measurement timed out, not the call


class BudgetExceeded(LLMError):
    """The call would pass `[budget] usd` or `tokens`, so it was not made. The run stops."""

    def __init__(self, reason: str, key: str = "usd"):
        super().__init__(f"{reason[0].upper()}{reason[1:]}; raise [budget] {key} in the recipe to allow more.")
        self.reason = reason  # lower case, as the run's stop reason
