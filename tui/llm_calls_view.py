"""The model calls an experiment made: who called, tokens, cost; the chosen call's messages in full."""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static


class LLMCallsView(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", classes="calls-caption")
        yield DataTable(cursor_type="row", classes="calls-table")
        with VerticalScroll(classes="calls-detail"):
            yield Static("")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for title, width in (("role", 5), ("model", 16), ("in", 6), ("out", 6), ("$", 7), ("s", 5), ("cache", 5), ("error", 8)):
            table.add_column(title, width=width)
        self.calls: list[dict] = []

    def show(self, calls: list[dict]) -> None:
        self.calls = calls
        table = self.query_one(DataTable)
        table.clear()
        for c in calls:
            table.add_row(c["role"], c["model"], str(c["prompt_tokens"] or 0), str(c["completion_tokens"] or 0),
                          f"{c['cost_usd'] or 0:.4f}", f"{c['seconds'] or 0:.1f}", "yes" if c["cached"] else "",
                          Text((c["error"] or "")[:60], style="red"))
        tokens = sum((c["prompt_tokens"] or 0) + (c["completion_tokens"] or 0) for c in calls)
        cost = sum(c["cost_usd"] or 0 for c in calls)
        caption = f"{len(calls)} calls, {tokens} tokens, ${cost:.4f}" if calls else "No model calls in this experiment."
        self.query_one(".calls-caption", Static).update(caption)
        self.display_call(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.display_call(event.cursor_row)

    def display_call(self, index: int) -> None:
        detail = self.query_one(".calls-detail Static", Static)
        if not 0 <= index < len(self.calls):
            detail.update("")
            return
        call = self.calls[index]
        # The reply first: it is what a reviewer looks for; the prompt that led to it follows.
        text = Text()
        text.append("reply: ", style="bold green")
        text.append((call["response"] or "") + "\n")
        if call["error"]:
            text.append(f"error: {call['error']}\n", style="red")
        try:
            messages = json.loads(call["messages"] or "[]")
        except json.JSONDecodeError:
            messages = [{"role": "?", "content": call["messages"]}]
        for m in messages:
            text.append(f"{m.get('role', '?')}: ", style="bold")
            text.append(f"{_content(m.get('content'))}\n")
        detail.update(text)
        self.query_one(".calls-detail", VerticalScroll).scroll_home(animate=False)


def _content(content) -> str:
    if isinstance(content, list):  # multi-part messages: keep the text parts
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")
