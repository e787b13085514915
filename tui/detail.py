"""One experiment: its diff, why it was tried and what became of it, examples, traces, model calls.

The review actions live here: apply, reject, star, re-measure.
"""

from __future__ import annotations

import json
import sqlite3

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from overnight.core.errors import OvernightError
from overnight.plugins.frontier import lineage

from .app_screen import AppScreen
from .ask import Ask
from .confirm import Confirm
from .breaks import Broken
from .diff_view import DiffView, coloured
from .examples_view import ExamplesView
from .format import SYMBOLS, fmt, gain, spread
from overnight.core.numbers import signed
from .llm_calls_view import LLMCallsView

MOST_REMEASURES = 50
TABS = ("tab-diff", "tab-why", "tab-examples", "tab-traces", "tab-calls")


class Detail(AppScreen):
    BINDINGS = [
        Binding("a", "apply", "apply"),
        Binding("r", "reject", "reject"),
        Binding("s", "star", "star"),
        Binding("m", "remeasure", "measure"),
        Binding("b", "toggle_base", "base/parent"),
        Binding("v", "toggle_side", "layout"),
        Binding("t", "next_tab", "tab"),
        *[Binding(str(i), f"show_tab({i})", show=False) for i in range(1, len(TABS) + 1)],
        Binding("escape", "back", "back"),
        Binding("q", "app.quit", "quit", show=False),
    ]

    def __init__(self, run_id: int, exp_id: int) -> None:
        super().__init__()
        self.run_id, self.exp_id = run_id, exp_id
        self.run: dict | None = None
        self.exp: dict | None = None
        self.views: dict[str, str | None] = {}
        self.against_parent = False
        self.side = False
        self.busy = ""

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield Static("Loading…", id="head")
        with TabbedContent(id="tabs"):
            with TabPane("Diff", id="tab-diff"):
                yield DiffView(id="diff")
            with TabPane("Why", id="tab-why"):
                with VerticalScroll():
                    yield Static("", id="why")
            with TabPane("Examples", id="tab-examples"):
                yield ExamplesView(id="examples")
            with TabPane("Traces", id="tab-traces"):
                with VerticalScroll():
                    yield Static("", id="traces")
            with TabPane("LLM calls", id="tab-calls"):
                yield LLMCallsView(id="calls")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.load()

    # -- loading ----------------------------------------------------------------

    @work(thread=True, group="detail-load", exclusive=True)
    def load(self) -> None:
        data = self.owner.data
        try:
            run = data.run(self.run_id)
            exp = data.experiment(self.exp_id)
            base = data.experiment(run["baseline_experiment"]) if run["baseline_experiment"] else None
            parent = data.experiment(exp["parent"]) if exp["parent"] else None
            views = {
                "exp": data.view(exp["candidate"]),
                "base": data.view(base["candidate"]) if base else None,
                "parent": data.view(parent["candidate"]) if parent else None,
            }
            loaded = dict(run=run, exp=exp, base=base, parent=parent, views=views, examples=data.examples(self.exp_id),
                          calls=data.llm_calls(self.exp_id), reviews=data.reviews(self.exp_id),
                          remeasures=data.remeasures(self.exp_id))
        except (sqlite3.Error, OvernightError) as exc:
            self.owner.from_thread(self.owner.notify, f"Could not read the experiment: {exc}", severity="error")
            return
        self.owner.from_thread(self.show, loaded)

    def show(self, loaded: dict) -> None:
        self.run, self.exp, self.views = loaded["run"], loaded["exp"], loaded["views"]
        self.base_row, self.parent_row = loaded["base"], loaded["parent"]
        e = self.exp
        self.sub_title = f"experiment {self.run_id}:{e['seq']} of {self.run['recipe']}"
        self.query_one("#head", Static).update(self.head(loaded["reviews"], loaded["remeasures"]))
        self.show_diff()
        self.query_one("#why", Static).update(self.why(loaded["reviews"]))
        self.query_one(ExamplesView).show(loaded["examples"])
        self.query_one("#traces", Static).update(self.traces())
        self.query_one(LLMCallsView).show(loaded["calls"])

    def head(self, reviews: list[dict], remeasures: list[float]) -> Text:
        e = self.exp
        text = Text()
        text.append(f"#{e['seq']} ", style="bold")
        text.append(f"{SYMBOLS.get(e['status'], '')} {e['status']}", style="bold")
        text.append(f" · score {fmt(e['score'])}")
        if e["status"] != "baseline" and e["delta"] is not None:
            goal = self.run["goal"] if self.run else None
            text.append(f" (gain {signed(gain(e['delta'], 0.0, goal) + 0.0)} vs baseline)")
        samples = json.loads(e["samples"]) if e["samples"] else []
        if len(samples) > 1:
            text.append(f" samples {', '.join(fmt(s) for s in samples)}")
        if e["holdout_score"] is not None:
            text.append(f" · holdout {fmt(e['holdout_score'])}")
        spent = f" · {e['seconds'] or 0:.1f} s"
        if e["cost_usd"] or e["tokens"]:
            spent += f" · ${e['cost_usd'] or 0:.4f} · {e['tokens'] or 0} tok"
        text.append(spent, style="dim")
        if remeasures:
            text.append(f"\nre-measured: {spread(remeasures)} (recorded {fmt(e['score'])})", style="bold cyan")
        marks = [r for r in reviews if r["action"] != "remeasured"]
        if marks:  # one current state, the latest; the history is in the Why tab
            text.append("\n")
            text.append(_review_text(marks[-1]) + (f" (latest of {len(marks)}; history under Why)" if len(marks) > 1 else ""),
                        style="magenta")
        if e["status"] != "baseline" and e["rationale"]:
            text.append("\nrationale: ", style="bold")
            text.append(e["rationale"])
        made = lineage(json.loads(e["meta"]) if e.get("meta") else None)
        if made:
            text.append("\nmade from: ", style="bold")
            text.append(made)
        text.append("\nreason: ", style="bold")
        text.append(e["reason"] or "-")
        if e["status"] == "invalid" and e.get("agent_trace"):
            text.append("\nthe model's reply, as it came:\n", style="bold")
            text.append("\n".join(e["agent_trace"].splitlines()[-12:]), style="dim")
            text.append("\n(all of it under Traces, key 4)", style="dim")
        return text

    def why(self, reviews: list[dict]) -> Text:
        e = self.exp
        text = Text()
        for label, value in (("Rationale", e["rationale"]), ("Status", f"{e['status']}: {e['reason'] or ''}"),
                             ("Error", e["error"])):
            if value:
                text.append(f"{label}\n", style="bold")
                text.append(f"{value}\n\n")
        if reviews:
            text.append("Reviews\n", style="bold")
            for r in reviews:
                text.append(f"{_review_text(r)}\n")
        return text

    def traces(self) -> Text:
        e = self.exp
        text = Text()
        for label, value in (("Agent", e["agent_trace"]), ("Measurement log (tail)", e["trace"]), ("Error", e["error"])):
            text.append(f"{label}\n", style="bold")
            text.append(f"{value}\n\n" if value else "(none)\n\n", style="" if value else "dim")
        return text

    def show_diff(self) -> None:
        new = self.views.get("exp")
        other_key = "parent" if self.against_parent else "base"
        other_row = self.parent_row if self.against_parent else self.base_row
        old = self.views.get(other_key)
        note = ""
        stored = ""
        if not self.exp["candidate"]:
            note = f"Experiment {self.exp['seq']} has no candidate ({self.exp['status']}): nothing to compare."
        elif new is None:
            note = f"The candidate of experiment {self.exp['seq']} is missing from the store."
            if self.exp["diff"]:
                note += " Showing the diff the run recorded against the baseline."
                stored = self.exp["diff"]
        elif other_row is None:
            note = "It has no parent: compared with itself." if self.against_parent else ""
            old = new
        elif old is None:
            note = f"The candidate of experiment {other_row['seq']} is missing from the store."
        what = f"#{other_row['seq']} ({'parent' if self.against_parent else 'baseline'})" if other_row else "-"
        self.query_one(DiffView).show(old, new, what, f"#{self.exp['seq']}", self.side, note=note, stored=stored)
        mode = "side by side" if self.side else "unified"
        self.query_one(TabbedContent).get_tab("tab-diff").label = f"Diff vs {'parent' if self.against_parent else 'baseline'}, {mode}"

    # -- actions ----------------------------------------------------------------

    def action_toggle_base(self) -> None:
        if self.exp is not None:
            self.against_parent = not self.against_parent
            self.show_diff()

    def action_toggle_side(self) -> None:
        if self.exp is not None:
            self.side = not self.side
            self.show_diff()

    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = TABS[(TABS.index(tabs.active) + 1) % len(TABS)]

    def action_show_tab(self, number: int) -> None:
        self.query_one(TabbedContent).active = TABS[number - 1]

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reject(self) -> None:
        if self.exp is None:
            return
        if self.exp["status"] == "baseline":
            self.notify("The baseline is your file as it was; there is nothing to reject.", severity="warning")
            return
        self.app.push_screen(Ask(f"Reject experiment {self.run_id}:{self.exp['seq']}",
                                 "Why? Later runs of this recipe show the note to the agent.",
                                 check=lambda t: None if t else "Say why in a few words: the agent learns from it.",
                                 ok="Reject"),
                             lambda note: note and self.review("rejected", note))

    def action_star(self) -> None:
        if self.exp is None:
            return
        self.app.push_screen(Ask(f"Star experiment {self.run_id}:{self.exp['seq']}",
                                 "A note (optional): later runs of this recipe show it to the agent.", ok="Star"),
                             lambda note: note is not None and self.review("starred", note))

    def review(self, action: str, note: str) -> None:
        self.owner.background(self._review, action, note)

    def _review(self, action: str, note: str) -> None:
        from overnight.ops.review import review

        try:
            message = self.owner.data.write(review, self.run, self.exp, action, note)
        except (OvernightError, sqlite3.Error) as exc:
            self.owner.from_thread(self.owner.notify, str(exc), severity="error")
            return
        self.owner.from_thread(self.owner.notify, message)
        self.owner.from_thread(self.load)

    def action_apply(self) -> None:
        if self.exp is not None:
            self.prepare_apply()

    def prepare_apply(self) -> None:
        self.owner.background(self._prepare_apply)

    def _prepare_apply(self) -> None:
        """Shows what applying would write, or why it cannot; writes nothing."""
        try:
            surface, _, diff = self._apply_experiment(preview=True)
        except OvernightError as exc:
            # The CLI's way round it, spelled out: the TUI offers no --force of its own.
            reason = exc.message.replace("Use --force to apply anyway.",
                                         f"If you are sure: overnight apply {self.run_id}:{self.exp['seq']} --force")
            self.refuse(reason)
            return
        self.owner.from_thread(self.confirm_apply, surface.source(), diff)

    def _apply_experiment(self, preview: bool):
        """The same apply as `overnight apply`: (surface, experiment, diff or backup path).

        The preview refuses a recipe not trusted as it is now: the TUI cannot ask on the terminal it draws on.
        """
        from overnight.ops import apply as ops

        data = self.owner.data
        with data.lock:
            store = data.open()
            run = store.run(self.run_id)
            exp = store.experiment(self.exp_id)
            surface, written = (ops.preview(store, run, exp, trusted_only=True) if preview else ops.apply(store, run, exp))
            return surface, exp, written

    def refuse(self, reason: str, title: str = "Not applied") -> None:
        """Says why an action was not carried out (from a worker thread)."""
        self.owner.from_thread(self.owner.notify, reason, title=title, severity="error", timeout=10)

    def confirm_apply(self, source, diff: str) -> None:
        if not diff:
            self.notify(f"{source} already holds this version; nothing to apply.")
            return
        body = Group(Broken(str(source), style="bold"), coloured(diff))
        self.app.push_screen(Confirm(f"Write experiment {self.run_id}:{self.exp['seq']} to your file?", body, yes="Apply"),
                             lambda yes: yes and self.apply())

    def apply(self) -> None:
        self.owner.background(self._apply)

    def _apply(self) -> None:
        from overnight.ops.apply import Unchanged

        try:
            surface, exp, backup = self._apply_experiment(preview=False)
        except Unchanged as same:  # written meanwhile (by `overnight apply`, say): nothing to do, nothing wrong
            self.owner.from_thread(self.owner.notify, same.message)
            return
        except OvernightError as exc:
            self.refuse(exc.message)
            return
        kept = f" The previous version is kept at {backup}." if backup else ""
        self.owner.from_thread(self.owner.notify, f"Applied experiment {self.run_id}:{exp['seq']} to {surface.source()}.{kept}",
                                  title="Applied", timeout=10)
        self.owner.from_thread(self.load)

    def action_remeasure(self) -> None:
        if self.exp is None:
            return
        if not self.exp["candidate"]:
            self.notify(f"Experiment {self.exp['seq']} has no candidate to measure.", severity="warning")
            return
        if self.busy:
            self.notify(self.busy, severity="warning")
            return

        def check(text: str) -> str | None:
            if not text.isdigit() or not 1 <= int(text) <= MOST_REMEASURES:
                return f"Write a whole number from 1 to {MOST_REMEASURES}."
            return None

        self.app.push_screen(Ask(f"Re-measure experiment {self.run_id}:{self.exp['seq']}",
                                 "How many times? Each runs the metric again, without the cache.", value="3",
                                 check=check, ok="Measure"),
                             lambda n: n and self.remeasure(int(n)))

    def remeasure(self, times: int) -> None:
        self.owner.background(self._remeasure, times)

    def _remeasure(self, times: int) -> None:
        from overnight.ops.remeasure import remeasure

        self.busy = f"Re-measuring experiment {self.exp['seq']}…"
        self.owner.from_thread(self.owner.notify, f"{self.busy} ({times} times)")
        try:
            samples, failures = remeasure(self.owner.data.path, self.run_id, self.exp_id, times,
                                          progress=lambda i: self.owner.from_thread(self.progress, i, times))
        except OvernightError as exc:
            self.refuse(exc.message, "Not re-measured")
            return
        finally:
            self.busy = ""
        message = f"Measured {len(samples)} of {times} times again: {spread(samples)} (recorded {fmt(self.exp['score'])})."
        if failures:
            message += f" {len(failures)} failed: {failures[0]}"
        self.owner.from_thread(self.owner.notify, message, title="Re-measured", timeout=10,
                                  severity="warning" if failures else "information")
        self.owner.from_thread(self.load)

    def progress(self, done: int, times: int) -> None:
        self.sub_title = f"experiment {self.run_id}:{self.exp['seq']} · re-measuring {done}/{times}"


def _review_text(r: dict) -> str:
    mark = {"starred": "★ starred", "rejected": "✗ rejected", "applied": "✓ applied"}.get(r["action"], r["action"])
    if r["action"] == "applied":
        return f"{mark} to {r['path']}"
    return f"{mark}: {r['note']}" if r["note"] else mark
