"""The home screen: every run in the store, newest first; a welcome when there is none."""

from __future__ import annotations

import sqlite3

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from overnight.core.errors import OvernightError
from overnight.ops.control import process_alive

from .app_screen import AppScreen
from .format import fit, gain_pct, gain_text, when
from .run_summary import STATUS_STYLE

POLL_SECONDS = 0.5

WELCOME = """\
[b]No runs yet[/b] in {path}

Start a first run in another terminal, in this folder:

    [b]overnight demo[/b]            the bundled pricing recipe, offline
    [b]overnight run RECIPE[/b]      your own recipe (a folder with recipe.toml)

This screen shows the run as soon as it starts.
"""


class RunsScreen(AppScreen):
    BINDINGS = [
        # Above the table's own (hidden) enter key, so that the footer shows it.
        Binding("enter", "open_run", "open", priority=True),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stamp = None
        self.runs: list[dict] = []
        self.polling = False
        self.failed = False
        self.errors = 0

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield DataTable(cursor_type="row", id="runs")
        yield Static("", id="message")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        # 79 columns in all (cell padding included): the gain stays in view at 80.
        for title, width in (("#", 3), ("recipe", 13), ("status", 8), ("started", 12), ("exps", 5),
                             ("baseline → best", 17), ("gain", 7)):
            table.add_column(title, width=width, key=title)
        table.display = False
        self.poll()
        self.timer = self.set_interval(POLL_SECONDS, self.poll)

    def poll(self) -> None:
        if not self.polling and not self.failed:
            self.polling = True
            self.read_runs()

    @work(thread=True, group="runs-poll")
    def read_runs(self) -> None:
        data = self.owner.data
        try:
            if not data.exists():
                self.owner.from_thread(self.show_welcome)
                return
            stamp = data.runs_stamp()
            if stamp == self.stamp:
                return
            runs = data.runs()
            first = None
            if self.owner.opens_single(runs):
                # Read its experiments now, in this worker: the dashboard paints as soon as it mounts.
                run = data.run(runs[0]["id"])
                first = (run, data.ledger(run["id"]), process_alive(run))
            self.owner.from_thread(self.show_runs, stamp, runs, first)
        except OvernightError as exc:
            # A store being created by a run that just started is not migrated for a moment;
            # anything else that persists is shown.
            self.errors += 1
            if "newer version" in exc.message or self.errors > 4:
                self.owner.from_thread(self.show_error, exc.message)
        except sqlite3.Error:
            pass  # a writer holds the store for a moment: the next poll catches up
        finally:
            self.polling = False

    def show_welcome(self) -> None:
        message = self.query_one("#message", Static)
        message.update(WELCOME.format(path=self.owner.data.path))
        message.display = True
        self.query_one("#runs").display = False

    def show_error(self, text: str) -> None:
        """The store cannot be read (for example a newer version wrote it): say so, touch nothing."""
        self.failed = True
        self.timer.stop()
        message = self.query_one("#message", Static)
        message.update(Text.assemble(("Error: ", "bold red"), text, "\n\nPress q to quit."))
        message.display = True
        self.query_one("#runs").display = False

    def show_runs(self, stamp, runs: list[dict], first: tuple | None = None) -> None:
        self.stamp, self.runs = stamp, runs
        if not runs:
            return self.show_welcome()
        self.query_one("#message").display = False
        table = self.query_one("#runs", DataTable)
        table.display = True
        chosen = table.cursor_row
        table.clear()
        for r in runs:
            pct = gain_pct(r["baseline_score"], r["best_score"], r["goal"])
            style = "green" if pct and pct > 0 else "red" if pct and pct < 0 else ""
            table.add_row(str(r["id"]), r["recipe"], Text(r["status"] or "", style=STATUS_STYLE.get(r["status"], "")),
                          when(r["started_at"]), str(r["experiments"] or 0),
                          f"{fit(r['baseline_score'], 7)} → {fit(r['best_score'], 7)}",
                          Text(gain_text(r["baseline_score"], r["best_score"], r["goal"]), style=style), key=str(r["id"]))
        table.move_cursor(row=min(chosen, len(runs) - 1))
        table.focus()
        self.app.runs_shown(runs, first)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(int(event.row_key.value))

    def action_open_run(self) -> None:
        table = self.query_one("#runs", DataTable)
        if self.runs and table.display:
            self.app.open_run(self.runs[table.cursor_row]["id"])
