"""Per-example results of an experiment, failing first, train and holdout; the chosen one in full."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from .format import fmt

SPLIT_ORDER = {"train": 0, "holdout": 1}


def failing_first(examples: list[dict]) -> list[dict]:
    return sorted(examples, key=lambda e: (e["score"] is None or e["score"] >= 1, SPLIT_ORDER.get(e["split"], 2),
                                           e["score"] if e["score"] is not None else 0, e["id"]))


class ExamplesView(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", classes="examples-caption")
        yield DataTable(cursor_type="row", zebra_stripes=True, classes="examples-table")
        with VerticalScroll(classes="examples-detail"):
            yield Static("")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for title, width in (("split", 7), ("id", 8), ("score", 5), ("output", 15), ("expected", 15), ("feedback", 16)):
            table.add_column(title, width=width)
        self.examples: list[dict] = []

    def show(self, examples: list[dict]) -> None:
        self.examples = failing_first(examples)
        table = self.query_one(DataTable)
        table.clear()
        for e in self.examples:
            fails = e["score"] is not None and e["score"] < 1
            style = "red" if fails else ""
            table.add_row(e["split"], Text(e["example_id"] or "", style=style), Text(fmt(e["score"]), style=style),
                          _one_line(e["output"]), _one_line(e["expected"]), _one_line(e["feedback"]))
        counts = {}
        for e in self.examples:
            passed, total = counts.get(e["split"], (0, 0))
            counts[e["split"]] = (passed + (e["score"] is not None and e["score"] >= 1), total + 1)
        caption = " · ".join(f"{split}: {p} of {t} passed" for split, (p, t) in counts.items())
        self.query_one(".examples-caption", Static).update(caption or "This metric has no per-example results.")
        self.display_example(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.display_example(event.cursor_row)

    def display_example(self, index: int) -> None:
        detail = self.query_one(".examples-detail Static", Static)
        if not 0 <= index < len(self.examples):
            detail.update("")
            return
        e = self.examples[index]
        text = Text()
        for label, value in (("input", e["input"]), ("output", e["output"]), ("expected", e["expected"]), ("feedback", e["feedback"])):
            if value:
                text.append(f"{label}: ", style="bold")
                text.append(f"{value}\n")
        detail.update(text)


def _one_line(value: str | None) -> str:
    return (value or "").replace("\n", " ")[:200]
