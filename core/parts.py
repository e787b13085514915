"""A large view stored as parts, each once, shared by every view that holds it.

A run keeps every view it measured (`candidates`), and on a large file most experiments change
a line or two: kept whole, a night on a 28 MB file wrote 2.8 GB. So past `PARTS_FROM` a view is
cut into parts at line ends chosen by the lines themselves (a line whose checksum ends in five
zero bits ends a part, once the part holds `LEAST` characters; past `MOST`, the last line end
before it does). An
edit changes the part it falls in, and the cuts fall in the same places before and after it, so
the next view adds a part or two and a list of the others' names.
"""

from __future__ import annotations

import hashlib
import zlib
from bisect import bisect_right
from itertools import accumulate
from operator import methodcaller

PARTS_FROM = 256 * 1024  # characters: smaller views are kept whole, as scripts read them
LEAST, MOST = 4 * 1024, 64 * 1024  # characters in a part, but for the last
_utf8 = methodcaller("encode", "utf-8", "surrogatepass")


def split(view: str) -> list[str]:
    """The view's parts, in order; joined, they are the view. Each line is looked at by C code
    (split, encode, checksum): a loop over the lines of 28 MB in Python took 0.4 s a view."""
    if not view:
        return []
    lines = view.split("\n")
    ends = [end + k for k, end in enumerate(accumulate(map(len, lines)), 1)]  # where each line ends, its newline too
    ends[-1] = len(view)  # the last line has none
    marks = [k for k, sum_ in enumerate(map(zlib.crc32, map(_utf8, lines))) if not sum_ & 31]
    cuts, start = [], 0
    for end in [*(ends[k] for k in marks), len(view)]:
        while end - start > MOST:  # no mark for too long: cut at the last line end that keeps the part short
            i = bisect_right(ends, start + MOST) - 1
            start = ends[i] if ends[i] > start else ends[bisect_right(ends, start)]  # or after one long line
            cuts.append(start)
        if end > start and (end - start >= LEAST or end == len(view)):
            cuts.append(end)
            start = end
    return [view[a:b] for a, b in zip([0, *cuts], cuts)]


def name(part: str) -> str:
    return hashlib.blake2b(part.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
