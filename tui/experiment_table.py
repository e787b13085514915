"""The experiments of a run as a table that draws only the rows on screen.

Textual's DataTable measures every cell when rows arrive, which takes seconds
for 10,000 experiments; this table renders the visible lines alone (the Line
API) from the run's ledger: numbers for every row, and the text of the rows on
screen, which it asks for as they come into view. A run of 100,000 opens as
fast as a short one.
"""

from __future__ import annotations

from bisect import insort
from typing import Sequence

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
from .ledger import Ledger, Rows

# key, title, width (0: a share of what is left), align. At 80 columns every
# one is on screen: the text columns share the rest, the reason taking most.
COLUMNS = (
    ("seq", "#", 4, ">"),
    ("status", "status", 14, "<"),  # "! guard_failed", the longest
    ("score", "score", 8, ">"),
    ("delta", "delta", 8, ">"),
    ("rationale", "rationale", 0, "<"),
    ("reason", "reason", 0, "<"),
)
RATIONALE_SHARE = 0.45  # of the width left for text; the reason has the rest
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
    return matches_status(row["status"], what)


def matches_status(status: str, what: str) -> bool:
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


def sort_key(key: str, goal: str, ledger: Ledger):
    """Ascending keys of ledger rows for each order: newest, best score or delta first, or by status."""
    seqs = ledger.seqs
    if key == "seq":
        return lambda i: -seqs[i]
    if key == "status":
        rank, statuses = [ORDER.get(name, 99) for name in ledger.names], ledger.statuses
        return lambda i: (rank[statuses[i]], seqs[i])
    values = ledger.scores if key == "score" else ledger.deltas
    sign = -1 if goal == "maximize" else 1  # best first

    def by(i: int):
        value = values[i]
        return (True, 0, seqs[i]) if value != value else (False, sign * value, seqs[i])  # no score: last

    return by


class ExperimentTable(ScrollView, can_focus=True):
    """seq, status, score, delta, rationale, reason; sortable (s or a click on a heading), filterable (f, k)."""

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

    class NeedText(Message):
        """Rows came into view whose rationale and reason have not been read yet."""

        def __init__(self, ids: list[int]) -> None:
            super().__init__()
            self.ids = ids

    def __init__(self, goal: str = "maximize", **kwargs) -> None:
        super().__init__(**kwargs)
        self.goal = goal
        self.ledger = Ledger(0)
        self.shown: Sequence[int] = range(0)  # ledger indices, in the order on screen
        self.marked: set[int] = set()
        self.asked: set[int] = set()  # ids whose text is being read
        self.asking = False
        self.seq_digits = (-1, 1)  # (rows, digits of the largest experiment number)

    # -- data -------------------------------------------------------------------

    @property
    def rows(self) -> Rows:
        """Every row of the run, as dicts made on demand."""
        return Rows(self.ledger)

    def show_ledger(self, ledger: Ledger) -> None:
        """The run as first read."""
        self.ledger = ledger
        self._reorder()

    def add_rows(self, new: list[int], changed: list[int] = ()) -> None:
        """New experiments arrived in the ledger (and some changed); the cursor stays on the row it was on."""
        if not new and not changed:
            return
        current = self._current_index()
        # Newest first by default: follow the run while the cursor is at the top.
        follow = self.cursor == 0 and self.sort == "seq"
        if changed or self._default_order():
            self._reorder(keep=None if follow else current)
            return
        shown = self.shown if isinstance(self.shown, list) else list(self.shown)
        key, codes, statuses = sort_key(self.sort, self.goal, self.ledger), self._codes(), self.ledger.statuses
        for i in new:  # into their places: a long run is not sorted again at every poll
            if codes is None or statuses[i] in codes:
                insort(shown, i, key=key)
        self._place(shown, None if follow else current)

    def add_text(self, ids: list[int], rows: list[dict]) -> None:
        """The rationale and reason of rows asked for (NeedText)."""
        self.ledger.add_text(rows)
        self.asked.difference_update(ids)
        self.refresh()

    def row_of(self, exp_id: int) -> dict | None:
        i = self.ledger.index_of(exp_id)
        return None if i is None else self.ledger.row(i)

    @property
    def current(self) -> dict | None:
        i = self._current_index()
        return None if i is None else self.ledger.row(i)

    def _current_index(self) -> int | None:
        if 0 <= self.cursor < len(self.shown):
            return self.shown[self.cursor]
        return None

    def visible_rows(self) -> list[dict]:
        return [self.ledger.row(i) for i in self.shown]

    def toggle_mark(self) -> dict | None:
        row = self.current
        if row is not None:
            self.marked ^= {row["id"]}
            self.refresh()
        return row

    def _default_order(self) -> bool:
        return self.sort == "seq" and self.filter == "all" and self.ledger.in_order

    def _codes(self) -> set[int] | None:
        """The statuses the filter lets through, as the ledger's codes (None: all)."""
        if self.filter == "all":
            return None
        return {code for code, name in enumerate(self.ledger.names) if matches_status(name, self.filter)}

    def _reorder(self, keep: int | None = None) -> None:
        ledger, n = self.ledger, len(self.ledger)
        if self._default_order():
            shown: Sequence[int] = range(n - 1, -1, -1)  # nothing to sort, nothing to hold
        else:
            codes, statuses = self._codes(), ledger.statuses
            indices = range(n) if codes is None else [i for i in range(n) if statuses[i] in codes]
            if self.sort == "seq" and ledger.in_order:
                shown = indices[::-1]
            else:
                shown = sorted(indices, key=sort_key(self.sort, self.goal, ledger))
        self._place(shown, keep)

    def _place(self, shown: Sequence[int], keep: int | None) -> None:
        self.shown = shown
        self.virtual_size = Size(self.size.width, len(shown) + 1)
        if keep is not None:
            try:
                self.cursor = shown.index(keep)
            except ValueError:
                self.cursor = 0
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
        current = self._current_index()
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
        for (key, _, _, _), width in zip(COLUMNS, widths(self.scrollable_content_region.width, self._seq_width())):
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
        i = self.shown[index]
        ledger = self.ledger
        exp_id, status = ledger.ids[i], ledger.status(i)
        text = ledger.text.get(exp_id)
        if text is None:
            self._want_text()
        base = self.rich_style
        if exp_id in self.marked:
            base += self.get_component_rich_style("experiment-table--marked")
        if index == self.cursor:
            base += self.get_component_rich_style("experiment-table--cursor")
        return self._strip(_cells(ledger, i, text), width, base, STATUS_STYLE.get(status))

    def _want_text(self) -> None:
        if not self.asking:
            self.asking = True
            self.call_later(self._ask_text)

    def _ask_text(self) -> None:
        """Asks for the text of the rows on screen, and of a screen above and below (scrolling is smooth)."""
        self.asking = False
        top, height = int(self.scroll_y), max(1, self.scrollable_content_region.height)
        ids, text = self.ledger.ids, self.ledger.text
        window = self.shown[max(0, top - height):top + 2 * height]
        missing = [ids[i] for i in window if ids[i] not in text and ids[i] not in self.asked]
        if missing:
            self.asked.update(missing)
            self.post_message(self.NeedText(missing))

    def _title(self, key: str, title: str) -> str:
        return f"{title}▾" if key == self.sort else title

    def _seq_width(self) -> int:
        """The digits of the run's largest experiment number (the newest, in a run read in order)."""
        seqs = self.ledger.seqs
        if self.seq_digits[0] != len(seqs):  # counted again only when rows arrive
            self.seq_digits = (len(seqs), len(str(self.ledger.last_seq())))
        return self.seq_digits[1]

    def _strip(self, cells: list[str], width: int, style: Style, status_style: Style | None) -> Strip:
        segments = []
        for (key, _, _, align), w, text in zip(COLUMNS, widths(width, self._seq_width()), cells):
            text = clip(text.replace("\n", " "), w)
            if align == ">":
                text = " " * (w - cell_len(text)) + text
            cell_style = style + status_style if (key == "status" and status_style) else style
            segments.append(Segment(set_cell_size(text, w), cell_style))
            segments.append(Segment(" ", style))
        return Strip(segments).adjust_cell_length(width, self.rich_style)


def widths(width: int, seq: int = 4) -> list[int]:
    """Each column's width in `width` cells: the fixed ones as declared (`seq` for the experiment
    numbers), the text ones sharing the rest. Below 80 columns the numbers give way first, so the
    reason stays in sight.
    """
    fixed = [max(seq, w) if key == "seq" else w for key, _, w, _ in COLUMNS]
    rest = width - sum(fixed) - len(COLUMNS)
    for key, least in (("delta", 6), ("score", 6), ("status", 10)):  # narrower than 80: numbers lose digits
        i = next(n for n, c in enumerate(COLUMNS) if c[0] == key)
        take = max(0, min(fixed[i] - least, 24 - rest))
        fixed[i] -= take
        rest += take
    rest = max(0, rest)
    rationale = int(rest * RATIONALE_SHARE)
    return fixed[:4] + [rationale, rest - rationale]


def clip(text: str, width: int) -> str:
    """`text` in `width` cells, ending in an ellipsis when it was longer."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(0, width - 1)) + "…" if width > 0 else ""


def _cells(ledger: Ledger, i: int, text: tuple[str, str] | None) -> list[str]:
    status = ledger.status(i)
    rationale, reason = text or ("", "")
    if status == "baseline":
        rationale, reason = "", reason or ("your file as it was" if text is not None else "")
    delta = ledger.delta(i)
    return [str(ledger.seqs[i]), f"{SYMBOLS.get(status, ' ')} {status}", fit(ledger.score(i), 8),
            "" if delta is None else fit(delta, 8, signed=True), rationale, reason]
