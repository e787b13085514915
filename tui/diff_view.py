"""Two views compared, unified or side by side: difflib finds the changes, rich draws them."""

from __future__ import annotations

import difflib

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from .breaks import pieces

CONTEXT = 3  # unchanged lines shown around each change


def unified(old: str, new: str, old_name: str, new_name: str) -> RenderableType:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, n=CONTEXT, lineterm=""))
    if not lines:
        return Text("No difference.", style="dim")
    return Marked(lines)


class Marked:
    """Diff lines that keep their mark when they wrap: a continuation of an added line reads `+↳`.

    Without colour (NO_COLOR, a pasted screen) the mark is all that says a line was
    added or removed, so every screen line of it carries one, not just the first.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = [line.expandtabs() for line in lines]

    def __rich_console__(self, console: Console, options: ConsoleOptions):
        width = max(4, options.max_width)
        for line in self.lines:
            style = _style(line)
            header = line.startswith(("+++", "---", "@@"))
            mark = " " if header or not line else line[0]
            for k, piece in enumerate(pieces(line, width, width - 2)):
                yield Text(piece if k == 0 else mark + CONTINUED + piece, style=style, end="\n", no_wrap=True)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(4, max((cell_len(line) for line in self.lines), default=4))


CONTINUED = "↳"  # after the mark, on the screen lines a long diff line wraps onto


def _style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "bold"
    return "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else ""


def side_by_side(old: str, new: str, old_name: str, new_name: str) -> RenderableType:
    a, b = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() == 1.0:
        return Text("No difference.", style="dim")
    table = Table(box=None, expand=True, show_header=True, pad_edge=False, padding=(0, 1), show_edge=False)
    table.add_column("", justify="right", style="dim", no_wrap=True, width=4)
    table.add_column(old_name, ratio=1, overflow="fold")
    table.add_column("", justify="right", style="dim", no_wrap=True, width=4)
    table.add_column(new_name, ratio=1, overflow="fold")
    for group in matcher.get_grouped_opcodes(CONTEXT):
        first = group[0]
        table.add_row("", Text(f"@@ {first[1] + 1} / {first[3] + 1}", style="cyan"), "", "")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for i, j in zip(range(i1, i2), range(j1, j2)):
                    table.add_row(str(i + 1), Hanging(Text("  " + a[i])), str(j + 1), Hanging(Text("  " + b[j])))
                continue
            left, right = list(range(i1, i2)), list(range(j1, j2))
            for k in range(max(len(left), len(right))):
                i = left[k] if k < len(left) else None
                j = right[k] if k < len(right) else None
                old_text, new_text = _pair(a[i] if i is not None else None, b[j] if j is not None else None)
                table.add_row(str(i + 1) if i is not None else "", Hanging(old_text),
                              str(j + 1) if j is not None else "", Hanging(new_text))
    return table


def _pair(old: str | None, new: str | None) -> tuple[Text, Text]:
    """A changed line beside its new version, the changed characters underlined."""
    left, right = Text(), Text()
    if old is not None:
        left.append("- ", style="red")
    if new is not None:
        right.append("+ ", style="green")
    if old is None or new is None:
        left.append(old or "", style="red")
        right.append(new or "", style="green")
        return left, right
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        strong = tag != "equal"
        left.append(old[i1:i2], style="bold red underline" if strong else "red")
        right.append(new[j1:j2], style="bold green underline" if strong else "green")
    return left, right


class Hanging:
    """A side of a side-by-side row: its mark (`- `, `+ ` or two spaces) begins every screen line it wraps onto."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions):
        text, width = self.text, max(3, options.max_width)
        if not text.plain:
            yield Text("")
            return
        mark, body = text[:2], text[2:]
        cuts, at = [], 0
        for piece in pieces(body.plain, width - 2)[:-1]:
            at += len(piece)
            cuts.append(at)
        for k, line in enumerate(body.divide(cuts)):
            gutter = mark if k == 0 else Text(mark.plain[:1] + CONTINUED, style=text.get_style_at_offset(console, 0))
            yield Text.assemble(gutter, line, no_wrap=True)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(3, max(3, self.text.cell_len))


class DiffView(VerticalScroll):
    """Scrolls a diff; `show` swaps what it holds."""

    def compose(self):
        yield Static("", classes="diff-body")

    def show(self, old: str | None, new: str | None, old_name: str, new_name: str, side: bool,
             note: str = "", stored: str = "") -> None:
        body = self.query_one(".diff-body", Static)
        parts: list[RenderableType] = []
        if note:
            parts.append(Text(note, style="yellow"))
        if old is not None and new is not None:
            parts.append(side_by_side(old, new, old_name, new_name) if side else unified(old, new, old_name, new_name))
        elif stored:
            parts.append(coloured(stored))
        body.update(Group(*parts))
        self.scroll_home(animate=False)


def coloured(diff: str) -> RenderableType:
    """A diff already made as text (by the surface, or recorded by the run), coloured line by line."""
    return Marked(diff.splitlines())
