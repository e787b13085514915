"""What each kept change of a run contributes at the end, as `overnight explain` measured it.

Read from the store only: measuring is `overnight explain`'s job (it runs the recipe's
commands, which the TUI never starts on its own).
"""

from __future__ import annotations

import sqlite3

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static

from overnight.core.errors import OvernightError

from .app_screen import AppScreen
from .format import fmt


def signed(x: float | None) -> str:
    return "-" if x is None else fmt(x) if x <= 0 else "+" + fmt(x)


class Contributions(AppScreen):
    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("q", "app.quit", "quit", show=False),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.rows: list | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield Static("Loading…", id="contributions")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run_id}: what each kept change contributes"
        self.load()

    @work(thread=True, group="contributions-load")
    def load(self) -> None:
        from overnight.core.explain import stored

        data = self.owner.data
        try:
            with data.lock:
                rows = stored(data.open(), self.run_id)
        except (sqlite3.Error, OvernightError) as exc:
            self.owner.from_thread(self.owner.notify, f"Could not read the contributions: {exc}", severity="error")
            return
        self.owner.from_thread(self.show, rows)

    def show(self, rows: list) -> None:
        self.rows = rows
        target = self.query_one("#contributions", Static)
        if not rows:
            target.update(f"Not explained yet: `overnight explain {self.run_id}` measures the best with each kept "
                          "change left out, and this table shows what it found.")
            return
        table = Table(box=None, expand=True, pad_edge=False)
        table.add_column("#", justify="right", width=4, no_wrap=True)
        table.add_column("change", ratio=1, overflow="ellipsis", no_wrap=True)
        table.add_column("gain then", justify="right", no_wrap=True)
        table.add_column("without it", justify="right", no_wrap=True)
        table.add_column("contribution", justify="right", no_wrap=True)
        for r in rows:
            verdict = r.verdict.replace("drop it", "keep the baseline's value") if r.seq is None else r.verdict
            style = "yellow" if verdict.endswith(("drop it", "value")) else "dim" if r.status == "skipped" else ""
            table.add_row(str(r.seq) if r.seq is not None else "-", r.rationale, signed(r.gain),
                          fmt(r.score_without), signed(r.contribution), style=style)
            if verdict:
                table.add_row("", Text(f"  {verdict}", style=style or "dim"), "", "", "")
        first = rows[0]
        head = Text(f"best measured again: {fmt(first.best_score)} · a change counts beyond {fmt(first.bar)} (the noise bar)\n")
        target.update(Group(head, table))

    def action_back(self) -> None:
        self.app.pop_screen()
