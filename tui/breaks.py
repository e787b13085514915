"""Where a long line breaks: after a space, else after a `/`, so words and paths read whole.

Textual folds a word longer than the line wherever the line ends, which cuts a
path mid-name; these breaks are made before the text reaches it.
"""

from __future__ import annotations

from rich.cells import cell_len, get_character_cell_size
from rich.measure import Measurement
from rich.text import Text


def pieces(line: str, width: int, rest: int | None = None) -> list[str]:
    """`line` cut into pieces the first `width` cells wide, the others `rest` (default `width`).

    A piece ends after its last space, else after its last `/`; a name longer than a
    whole line is cut where it must be.
    """
    out, room, rest = [], max(1, width), max(1, rest or width)
    while cell_len(line) > room:
        cut, used = 0, 0
        for i, char in enumerate(line):
            used += get_character_cell_size(char)
            if used > room:
                break
            cut = i + 1
        cut = max(1, cut)
        space = line.rfind(" ", 0, cut + 1)
        slash = line.rfind("/", 0, cut)
        if space > 0 and line[:space].strip():
            cut = space + 1
        elif slash > 0:
            cut = slash + 1
        out.append(line[:cut])
        line, room = line[cut:], rest
    out.append(line)
    return out


def wrapped(text: str, width: int) -> str:
    """`text` with its lines broken at spaces and slashes to fit `width` cells."""
    return "\n".join(piece.rstrip() for line in text.splitlines() for piece in pieces(line, width))


class Broken:
    """Text (a path, say) drawn broken at spaces and slashes, however wide it is drawn."""

    def __init__(self, text: str, style: str = "") -> None:
        self.text, self.style = text, style

    def __rich_console__(self, console, options):
        for line in self.text.splitlines():
            for piece in pieces(line, options.max_width):
                yield Text(piece.rstrip(), style=self.style, no_wrap=True)

    def __rich_measure__(self, console, options):
        return Measurement(1, max((cell_len(line) for line in self.text.splitlines()), default=1))
