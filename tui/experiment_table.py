"""The experiments of a run as a table that draws only the rows on screen.

Textual's DataTable measures every cell when rows arrive, which takes seconds
for 10,000 experiments; this table keeps plain rows and renders the visible
lines alone (the Line API), so a long run opens as fast as a short one.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from overnight.core.contracts import STATUSES

from .format import SYMBOLS, fit

# key, title, width (0 = the rest), align
COLUMNS = (
    ("seq", "#", 5, ">"),
    ("status", "status", 13, "<"),
    ("score", "score", 10, ">"),
    ("delta", "delta", 10, ">"),
    ("rationale", "rationale -- reason", 0, "<"),
)
SORTS = ("seq", "score", "delta", "status")
SORT_NAMES = {"seq": "newest first", "score": "best score first", "delta": "best delta first", "status": "by status"}
FAILED = ("crash", "timeout", "invalid")
# Filters `f` cycles through; `k` jumps to "kept" and back.
FILTERS = ("all", "kept", "discard", "failed", "other")
STATUS_STYLE = {
    "baseline": Style(bold=True), "keep": Style(color="green", bold=True), "discard": Style(dim=True),
    "crash": Style(color="red"), "timeout": Style(color="red"), "invalid": Style(color="yellow"),
    "guard_failed": Style(color="magenta"), "duplicate": Style(dim=True), "interrupted": Style(dim=True),
}


def matches(row: dict, what: str) -> bool:
    status = row["status"]
    if what == "all":
        return True
    if what == "kept":
        return status in ("keep", "baseline")
    if what == "failed":
        return status in FAILED
    if what == "other":
        return status not in ("keep", "baseline", "discard", *FAILED)
    return status == what


ORDER = {s: i for i, s in enumerate(STATUSES)}


def sort_key(key: str, goal: str):
    order = ORDER
    sign = -1 if goal == "maximize" else 1  # best first for score and delta

    def by(row: dict):
        if key == "status":
            return (order.get(row["status"], 99), row["seq"])
        if key in ("score", "delta"):
            value = row[key]
            return (value is None, sign * value if value is not None else 0, row["seq"])
        return (row["seq"],)

    return by


class ExperimentTable(ScrollView, can_focus=True):
    """seq, status, score, delta, rationale; sortable (s or a click on a heading), filterable (f, k)."""

    COMPONENT_CLASSES = {"experiment-table--header", "experiment-table--cursor", "experiment-table--marked"}
    BINDINGS = [
        Binding("enter", "select", "open"),
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
        Binding("k", "kept_only", "kept"),
        Binding("f", "next_filter", "filter"),
        Binding("s", "next_sort", "sort"),
    ]

    cursor = reactive(0, always_update=True)
    filter = reactive("all")
    sort = reactive("seq")

    class Selected(Message):
        """Enter or a click on the row under the cursor: open it."""

        def __init__(self, row: dict) -> None:
            super().__init__()
            self.row = row

    class Changed(Message):
        """The filter or the sort changed: the dashboard says so in its caption."""

    def __init__(self, goal: str = "maximize", **kwargs) -> None:
        super().__init__(**kwargs)
        self.goal = goal
        self.rows: list[dict] = []
        self.by_id: dict[int, int] = {}
        self.shown: list[int] = []
        self.marked: set[int] = set()

    # -- data -------------------------------------------------------------------

    def add_rows(self, rows: list[dict]) -> None:
        """New experiments arrive; the cursor stays on the row it was on."""
        if not rows:
            return
        current = self.current
        for row in rows:
            if row["id"] in self.by_id:
                self.rows[self.by_id[row["id"]]] = row
            else:
                self.by_id[row["id"]] = len(self.rows)
                self.rows.append(row)
        # Newest first by default: follow the run while the cursor is at the top.
        follow = self.cursor == 0 and self.sort == "seq"
        self._reorder(keep=None if follow else current)

    @property
    def current(self) -> dict | None:
        if 0 <= self.cursor < len(self.shown):
            return self.rows[self.shown[self.cursor]]
        return None

    def visible_rows(self) -> list[dict]:
        return [self.rows[i] for i in self.shown]

    def toggle_mark(self) -> dict | None:
        row = self.current
        if row is not None:
            self.marked ^= {row["id"]}
            self.refresh()
        return row

    def _reorder(self, keep: dict | None = None) -> None:
        rows, by = self.rows, sort_key(self.sort, self.goal)
        shown = [i for i, row in enumerate(rows) if matches(row, self.filter)]
        shown.sort(key=lambda i: by(rows[i]), reverse=self.sort == "seq")  # newest first
        self.shown = shown
        self.virtual_size = Size(self.size.width, len(shown) + 1)
        if keep is not None and keep["id"] in self.by_id:
            index = self.by_id[keep["id"]]
            self.cursor = shown.index(index) if index in shown else 0
        else:
            self.cursor = min(self.cursor, max(0, len(shown) - 1))
        self.refresh()

    # -- keys and mouse ---------------------------------------------------------

    def watch_cursor(self, cursor: int) -> None:
        body = max(1, self.scrollable_content_region.height - 1)
        if cursor < self.scroll_y:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= self.scroll_y + body:
            self.scroll_to(y=cursor - body + 1, animate=False)
        self.refresh()

    def action_cursor(self, step: int) -> None:
        if self.shown:
            self.cursor = max(0, min(len(self.shown) - 1, self.cursor + step))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.scrollable_content_region.height - 2))

    def action_jump(self, where: int) -> None:
        if self.shown:
            self.cursor = 0 if where == 0 else len(self.shown) - 1

    def action_select(self) -> None:
        if self.current is not None:
            self.post_message(self.Selected(self.current))

    def action_kept_only(self) -> None:
        self._set_filter("all" if self.filter == "kept" else "kept")

    def action_next_filter(self) -> None:
        self._set_filter(FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)])

    def action_next_sort(self) -> None:
        self._set_sort(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)])

    def _set_filter(self, what: str) -> None:
        current = self.current
        self.filter = what
        self._reorder(keep=current)
        self.post_message(self.Changed())

    def _set_sort(self, key: str) -> None:
        # A new order starts at its top: the best (or the newest) row.
        self.sort = key
        self.cursor = 0
        self._reorder()
        self.post_message(self.Changed())

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            key = self._column_at(event.x)
            if key in SORTS:
                self._set_sort(key)
            return
        index = int(self.scroll_y) + event.y - 1
        if 0 <= index < len(self.shown):
            again = index == self.cursor
            self.cursor = index
            if again or event.chain > 1:
                self.action_select()

    def _column_at(self, x: int) -> str | None:
        left = 0
        for key, _, width, _ in COLUMNS:
            width = width or 10_000
            if left <= x < left + width + 1:
                return key
            left += width + 1
        return None

    # -- drawing ----------------------------------------------------------------

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.shown) + 1)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            style = self.get_component_rich_style("experiment-table--header")
            return self._strip([self._title(key, title) for key, title, _, _ in COLUMNS], width, style, None)
        index = int(self.scroll_y) + y - 1
        if index >= len(self.shown):
            return Strip.blank(width, self.rich_style)
        row = self.rows[self.shown[index]]
        base = self.rich_style
        if row["id"] in self.marked:
            base += self.get_component_rich_style("experiment-table--marked")
        if index == self.cursor:
            base += self.get_component_rich_style("experiment-table--cursor")
        return self._strip(_cells(row), width, base, STATUS_STYLE.get(row["status"]))

    def _title(self, key: str, title: str) -> str:
        return f"{title}▾" if key == self.sort else title

    def _strip(self, cells: list[str], width: int, style: Style, status_style: Style | None) -> Strip:
        segments = []
        used = 0
        for (key, _, w, align), text in zip(COLUMNS, cells):
            w = w or max(0, width - used)
            text = text.replace("\n", " ")
            if align == ">" and cell_len(text) < w:
                text = " " * (w - cell_len(text)) + text
            text = set_cell_size(text, w)
            cell_style = style + status_style if (key == "status" and status_style) else style
            segments.append(Segment(text, cell_style))
            used += w
            if used < width:
                segments.append(Segment(" ", style))
                used += 1
            if used >= width:
                break
        return Strip(segments).adjust_cell_length(width, self.rich_style)


def _cells(row: dict) -> list[str]:
    status = row["status"]
    text = row["rationale"] or ""
    if row["reason"] and status != "baseline":
        text = f"{text} -- {row['reason']}" if text else row["reason"]
    elif status == "baseline":
        text = row["reason"] or "your file as it was"
    delta = row["delta"]
    return [str(row["seq"]), f"{SYMBOLS.get(status, ' ')} {status}", fit(row["score"], 10),
            "" if delta is None else fit(delta, 10, signed=True), text]
