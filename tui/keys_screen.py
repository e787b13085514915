"""`?`: every key of the screen you are on, the hidden ones too, with what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

NAMES = {"question_mark": "?", "escape": "esc", "enter": "enter", "space": "space", "left_square_bracket": "[",
         "right_square_bracket": "]", "slash": "/", "plus": "+", "minus": "-"}


def keys_of(screen: Screen) -> list[tuple[str, str]]:
    """(key, what it does) for the screen's bindings, its focused widget's and the app's, in that order."""
    rows: dict[str, str] = {}
    for key, active in screen.active_bindings.items():
        b = active.binding
        what = b.description or b.action.replace("_", " ").replace("(", " ").rstrip(")")
        shown = NAMES.get(key, key)
        rows.setdefault(shown, what)
    return list(rows.items())


class KeysScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.rows = keys_of(screen)
        self.name_of = type(screen).__name__

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        for key, what in self.rows:
            table.add_row(f"[bold]{key}[/]", what)
        with Vertical(classes="dialog"):
            yield Label(f"Keys of {self.name_of} (esc or ? closes)", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(table, id="keys")
