"""The one error type meant for people: it carries a sentence the CLI prints as is."""


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
