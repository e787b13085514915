"""One run at a glance: status, budget, gain, the score plot and the experiments; live."""

from __future__ import annotations

import json
import sqlite3
import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, Static

from overnight.core.errors import OvernightError
from overnight.ops.control import pause_run, process_alive, resume_run, steer_run, stop_run

from .app_screen import AppScreen
from .ask import Ask
from .budget_gauges import BudgetGauges
from .confirm import Confirm
from .experiment_table import SORT_NAMES, ExperimentTable, matches_status
from .ledger import Ledger
from .run_summary import RunSummary
from .score_plot import ScorePlot

POLL_SECONDS = 0.5


class Dashboard(AppScreen):
    BINDINGS = [
        Binding("c", "compare", "compare"),
        Binding("space", "mark", "mark", show=False),
        Binding("p", "pause", "pause"),
        Binding("p", "resume", "resume"),
        Binding("x", "stop", "stop"),
        Binding("g", "steer", "steer"),
        Binding("e", "explain", "explain"),
        Binding("F", "frontier", "frontier", show=False),
        Binding("escape", "back", "back"),
        Binding("q", "app.quit", "quit", show=False),
    ]

    def __init__(self, run_id: int, first: tuple | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.first = first  # (run, ledger, alive) when already read for us
        self.run: dict | None = None
        self.ledger: Ledger | None = None  # the run's experiments, shared by the table and the plot
        self.last_id = 0
        self.polling = False
        self.alive = True

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield RunSummary(id="summary")
        yield BudgetGauges(id="gauges")
        yield ScorePlot(id="plot")
        yield Static("", id="caption")
        yield ExperimentTable(id="experiments")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(ExperimentTable).focus()
        if self.first is not None:
            self.show(*self.first)
            self.first = None
        else:
            self.poll()
        self.timer = self.set_interval(POLL_SECONDS, self.poll)

    # -- live -------------------------------------------------------------------

    def poll(self) -> None:
        if not self.polling:
            self.polling = True
            self.read()

    @work(thread=True, group="dashboard-poll")
    def read(self) -> None:
        try:
            self.owner.from_thread(self.show, *self.poll_once())
        except (sqlite3.Error, OvernightError):
            pass  # a writer holds the store for a moment: the next poll catches up
        finally:
            self.polling = False

    def poll_once(self) -> tuple[dict, Ledger | list[dict], bool]:
        """The run's row and the experiments recorded since the last look (the first time, the run's ledger)."""
        data = self.owner.data
        run = data.run(self.run_id)
        if self.ledger is None:
            return run, data.ledger(self.run_id), process_alive(run)
        rows = []
        if data.max_experiment_id(self.run_id) > self.last_id:
            rows = data.experiments_after(self.run_id, self.last_id)
        ended = self.run is not None and self.run["status"] != run["status"]
        if ended and (run["baseline_experiment"] or run["best_experiment"]):
            # The holdout scores land on the baseline and the best when a run ends.
            rows += data.experiments_changed(self.run_id, [i for i in (run["baseline_experiment"], run["best_experiment"]) if i])
        return run, rows, process_alive(run)

    def show(self, run: dict, rows: Ledger | list[dict], alive: bool) -> None:
        # A poll that lands while the app is closing finds the widgets gone: nothing to show.
        try:
            self.query_one(RunSummary)
        except NoMatches:
            return
        first = self.run is None
        controls = (run["status"], run["control"], alive)
        changed = first or controls != (self.run["status"], self.run["control"], self.alive)
        self.run, self.alive = run, alive
        if changed:
            self.refresh_bindings()
            self.close_stale_stop()
        if first:
            self.query_one(ExperimentTable).goal = run["goal"] or "maximize"
            self.query_one(ScorePlot).goal = run["goal"] or "maximize"
            self.sub_title = f"run {run['id']} of {run['recipe']}"
        if isinstance(rows, Ledger):
            if self.ledger is None:
                self.ledger = rows
                self.last_id = rows.ids[-1] if len(rows) else 0
                self.query_one(ExperimentTable).show_ledger(rows)
                self.query_one(ScorePlot).show_ledger(rows)
                self.show_caption()
        elif rows:
            new, changed = self.ledger.add_rows(rows)
            self.last_id = max(self.last_id, max(r["id"] for r in rows))
            self.query_one(ExperimentTable).add_rows(new, changed)
            self.query_one(ScorePlot).replot()
            self.show_caption()
        elapsed = self.elapsed(run)
        self.query_one(RunSummary).show(run, elapsed, alive)
        budget = (json.loads(run["config"] or "{}")).get("budget", {})
        self.query_one(BudgetGauges).show(run, budget, elapsed)

    def elapsed(self, run: dict) -> float:
        seconds = run["seconds"] or 0.0
        if run["status"] == "running" and self.alive and run["updated_at"]:
            seconds += max(0.0, time.time() - run["updated_at"])  # between two experiments
        return seconds

    def show_caption(self) -> None:
        table = self.query_one(ExperimentTable)
        # Counted by status code, not row by row: a run of 100,000 is counted in a millisecond.
        # The baseline is not an experiment, nor one interrupted (it runs again on resume): count as the CLI does.
        statuses = table.ledger.statuses
        counts = {name: statuses.count(code) for code, name in enumerate(table.ledger.names) if name not in ("baseline", "interrupted")}
        every = sum(counts.values())
        shown = sum(n for name, n in counts.items() if matches_status(name, table.filter))
        text = f"{shown} of {every} experiments · {table.filter} · {SORT_NAMES[table.sort]}"
        if table.marked:
            seq = table.row_of(next(iter(table.marked)))["seq"]
            text += f" · #{seq} marked"
        self.query_one("#caption", Static).update(text)

    def on_experiment_table_changed(self) -> None:
        self.show_caption()

    def on_experiment_table_need_text(self, event: ExperimentTable.NeedText) -> None:
        self.read_text(event.ids)

    @work(thread=True, group="dashboard-text")
    def read_text(self, ids: list[int]) -> None:
        """The rationale and reason of the rows the table is about to show: a page, by id."""
        try:
            rows = self.owner.data.experiments_light(ids)
        except (sqlite3.Error, OvernightError):
            rows = []  # asked again when next drawn
        self.owner.from_thread(self.text_read, ids, rows)

    def text_read(self, ids: list[int], rows: list[dict]) -> None:
        try:
            self.query_one(ExperimentTable).add_text(ids, rows)
        except NoMatches:
            pass  # the app is closing

    # -- actions ----------------------------------------------------------------

    def on_experiment_table_selected(self, event: ExperimentTable.Selected) -> None:
        self.app.open_experiment(self.run_id, event.row["id"])

    def action_mark(self) -> None:
        table = self.query_one(ExperimentTable)
        current = table.current
        if current is None:
            return
        table.marked = set() if current["id"] in table.marked else {current["id"]}
        table.refresh()
        self.show_caption()

    def action_compare(self) -> None:
        """The first press marks the experiment under the cursor; the second compares it with another."""
        table = self.query_one(ExperimentTable)
        current = table.current
        if current is None:
            return
        if not table.marked or current["id"] in table.marked:
            self.action_mark()
            if table.marked:
                self.notify(f"Marked #{current['seq']}: move to another experiment and press c to compare.")
            return
        first = table.row_of(next(iter(table.marked)))
        a, b = sorted((first, current), key=lambda r: r["seq"])
        table.marked = set()
        table.refresh()
        self.show_caption()
        self.app.open_compare(self.run_id, a["id"], b["id"])

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Pause, resume and stop are offered while the run is going; explain once it is over.

        (Which also keeps the footer within 80 columns.)
        """
        if action not in ("pause", "resume", "stop", "explain"):
            return True
        run = self.run
        live = run is not None and run["status"] in ("running", "paused") and self.alive
        if action == "explain":
            return run is not None and not live
        if not live:
            return False
        paused = run["status"] == "paused" or run["control"] == "pause"
        return {"pause": not paused, "resume": paused, "stop": True}[action]

    def action_pause(self) -> None:
        self.app.control(self.run_id, pause_run)

    def action_resume(self) -> None:
        self.app.control(self.run_id, resume_run)

    def action_stop(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.app.control(self.run_id, stop_run)

        self.stop_dialog = Confirm(f"Stop run {self.run_id} after the experiment in flight?", yes="Stop")
        self.app.push_screen(self.stop_dialog, answered)

    def close_stale_stop(self) -> None:
        """A stop dialog does not outlive the run it asks about."""
        dialog = getattr(self, "stop_dialog", None)
        if dialog is None or self.check_action("stop", ()):
            return
        self.stop_dialog = None
        if dialog.is_attached and self.app.screen is dialog:
            dialog.dismiss(False)
            self.notify(f"Run {self.run_id} ended ({self.run['status']}); there is nothing left to stop.")

    def action_steer(self) -> None:
        def answered(text: str | None) -> None:
            if text:
                self.app.control(self.run_id, steer_run, text)

        self.app.push_screen(Ask("Steer", "A line of guidance; the agent reads it from its next proposal on.",
                                 placeholder="e.g. keep every sentence under 20 words",
                                 check=lambda t: None if t else "Write a line of guidance, or press Escape."), answered)

    def action_explain(self) -> None:
        from .contributions import Contributions  # what `overnight explain` found, read from the store

        self.app.push_screen(Contributions(self.run_id))

    def action_frontier(self) -> None:
        from .frontier_screen import FrontierScreen  # which candidates lead on which examples

        self.app.push_screen(FrontierScreen(self.run_id))

    def action_back(self) -> None:
        self.app.pop_screen()
