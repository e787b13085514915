"""`F`: a run's frontier, as `overnight show --frontier` prints it: which measured candidates
lead on which train examples. The reflective agent draws its parents from these; a person
reads here which prompt is best at what, before choosing one to apply."""

from __future__ import annotations

import sqlite3

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from overnight.core.errors import OvernightError

from .app_screen import AppScreen


class FrontierScreen(AppScreen):
    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("q", "app.quit", "quit", show=False),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.front: list[tuple[int, list[str]]] | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with VerticalScroll():
            yield Static("Reading the frontier…", id="frontier")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run_id}: which candidates lead on which train examples"
        self.load()

    @work(thread=True, group="frontier-load")
    def load(self) -> None:
        from overnight.ops.frontier import frontier

        try:
            front = self.owner.data.read(frontier, self.run_id)
        except (sqlite3.Error, OvernightError) as exc:
            self.owner.from_thread(self.owner.notify, f"Could not read the frontier: {exc}", severity="error")
            return
        self.owner.from_thread(self.show, front)

    def show(self, front: list[tuple[int, list[str]]]) -> None:
        self.front = front
        target = self.query_one("#frontier", Static)
        if not front:
            target.update("No frontier: this run's metric scores no train examples one by one, "
                          "so no candidate leads on any.")
            return
        table = Table(box=None, expand=True, pad_edge=False)
        table.add_column("#", justify="right", width=6, no_wrap=True)
        table.add_column("leads", justify="right", width=5, no_wrap=True)
        table.add_column("on these train examples", ratio=1)  # wrapped, never cut: each name is read whole
        for seq, led in front:
            table.add_row(str(seq), str(len(led)), ", ".join(led))
        many = len(front) != 1
        head = Text(f"{len(front)} candidate{'s' if many else ''} lead{'' if many else 's'} on train examples "
                    "(the reflective agent draws its parents from these).\n")
        target.update(Group(head, table))

    def action_back(self) -> None:
        self.app.pop_screen()
