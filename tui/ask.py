"""A one-line question in a modal: a note, a steering line, a number of re-measurements."""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class Ask(ModalScreen[str | None]):
    """Dismisses with the text (checked by `check`, which returns a problem or None), or None."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, prompt: str, *, value: str = "", placeholder: str = "",
                 check: Callable[[str], str | None] | None = None, ok: str = "OK") -> None:
        super().__init__()
        self.title_text, self.prompt, self.value = title, prompt, value
        self.placeholder, self.check, self.ok = placeholder, check, ok

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label(self.prompt, classes="dialog-prompt")
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Label("", classes="dialog-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        text = self.query_one(Input).value.strip()
        problem = self.check(text) if self.check else None
        if problem:
            self.query_one(".dialog-problem", Label).update(problem)
            return
        self.dismiss(text)
