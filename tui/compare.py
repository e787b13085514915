"""Two experiments side by side: their figures, then the change from the first to the second."""

from __future__ import annotations

import sqlite3

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static

from overnight.core.errors import OvernightError

from .app_screen import AppScreen
from .diff_view import DiffView
from .format import SYMBOLS, fmt


class Compare(AppScreen):
    BINDINGS = [
        Binding("v", "toggle_side", "layout"),
        Binding("escape", "back", "back"),
        Binding("q", "app.quit", "quit", show=False),
    ]

    def __init__(self, run_id: int, first_id: int, second_id: int) -> None:
        super().__init__()
        self.run_id, self.ids = run_id, (first_id, second_id)
        self.side = True
        self.loaded: dict | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield Static("Loading…", id="figures")
        yield DiffView(id="diff")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, group="compare-load")
    def load(self) -> None:
        data = self.owner.data
        try:
            exps = [data.experiment(i) for i in self.ids]
            views = [data.view(e["candidate"]) for e in exps]
        except (sqlite3.Error, OvernightError) as exc:
            self.owner.from_thread(self.owner.notify, f"Could not read the experiments: {exc}", severity="error")
            return
        self.owner.from_thread(self.show, {"exps": exps, "views": views})

    def show(self, loaded: dict) -> None:
        self.loaded = loaded
        a, b = loaded["exps"]
        self.sub_title = f"run {self.run_id}: #{a['seq']} and #{b['seq']}"
        table = Table(box=None, expand=True, show_header=True, pad_edge=False)
        table.add_column("", style="bold", width=9, no_wrap=True)
        table.add_column(f"#{a['seq']}", ratio=1, overflow="ellipsis", no_wrap=True)
        table.add_column(f"#{b['seq']}", ratio=1, overflow="ellipsis", no_wrap=True)
        for label, key in (("status", "status"), ("score", "score"), ("delta", "delta"), ("holdout", "holdout_score"),
                           ("rationale", "rationale"), ("reason", "reason")):
            table.add_row(label, _cell(a, key), _cell(b, key))
        self.query_one("#figures", Static).update(table)
        self.show_diff()

    def show_diff(self) -> None:
        a, b = self.loaded["exps"]
        old, new = self.loaded["views"]
        note = ""
        for e, view in zip((a, b), (old, new)):
            if not e["candidate"]:
                note = f"Experiment {e['seq']} has no candidate ({e['status']}): there is no text to compare."
            elif view is None:
                note = f"The candidate of experiment {e['seq']} is missing from the store."
        self.query_one(DiffView).show(old, new, f"#{a['seq']}", f"#{b['seq']}", self.side, note=note)

    def action_toggle_side(self) -> None:
        if self.loaded:
            self.side = not self.side
            self.show_diff()

    def action_back(self) -> None:
        self.app.pop_screen()


def _cell(e: dict, key: str) -> Text:
    value = e[key]
    if key == "status":
        return Text(f"{SYMBOLS.get(value, '')} {value}")
    if key in ("score", "delta", "holdout_score"):
        return Text(fmt(value))
    return Text((value or "-").replace("\n", " "))
