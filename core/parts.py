"""A large view stored as parts, each once, shared by every view that holds it.

A run keeps every view it measured (`candidates`), and on a large file most experiments change
a line or two: kept whole, a night on a 28 MB file wrote 2.8 GB. So past `PARTS_FROM` a view is
cut into parts at line ends chosen by the lines themselves (a line whose checksum ends in five
zero bits ends a part, once the part holds `LEAST` characters; `MOST` ends one regardless). An
edit changes the part it falls in, and the cuts fall in the same places before and after it, so
the next view adds a part or two and a list of the others' names.
"""

from __future__ import annotations

import hashlib
import zlib

PARTS_FROM = 256 * 1024  # characters: smaller views are kept whole, as scripts read them
LEAST, MOST = 4 * 1024, 64 * 1024  # characters in a part, but for the last


def split(view: str) -> list[str]:
    """The view's parts, in order; joined, they are the view."""
    parts, start, at = [], 0, 0
    for line in view.splitlines(keepends=True):
        at += len(line)
        if at - start >= MOST or (at - start >= LEAST and zlib.crc32(line.encode("utf-8", "surrogatepass")) & 31 == 0):
            parts.append(view[start:at])
            start = at
    if start < len(view):
        parts.append(view[start:])
    return parts


def name(part: str) -> str:
    return hashlib.blake2b(part.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
