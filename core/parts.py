"""A large view stored as parts, each once, shared by every view that holds it.

A run keeps every view it measured (`candidates`), and on a large file most experiments change
a line or two: kept whole, a night on a 28 MB file wrote 2.8 GB. So past `PARTS_FROM` a view is
cut into parts at line ends chosen by the lines themselves (a line whose checksum ends in five
zero bits ends a part, once the part holds `LEAST` characters; past `MOST`, the last line end
before it does). An
edit changes the part it falls in, and the cuts fall in the same places before and after it, so
the next view adds a part or two and a list of the others' names. Cutting a view costs a quarter
of a second on 28 MB, so `split_like` cuts only the stretch an edit falls in and takes the rest
from the view it edits.
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
            start = ends[i] if i >= 0 and ends[i] > start else ends[bisect_right(ends, start)]  # or after one long line
            cuts.append(start)
        if end > start and (end - start >= LEAST or end == len(view)):
            cuts.append(end)
            start = end
    return [view[a:b] for a, b in zip([0, *cuts], cuts)]


def name(part: str) -> str:
    return hashlib.blake2b(part.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def split_like(view: str, old: str, old_parts: list[str]) -> list[str]:
    """`split(view)`, taking from `old_parts` (`split(old)`) the parts of the text the two views
    begin and end with alike, and cutting only the stretch between (old parts come back as the
    same objects). Equal to `split(view)` because:

    - a cut depends on the lines before it and on at most `MOST` characters past the cut before
      it, so the cuts of two texts that lie `MOST` or more before the end of the last whole line
      they begin with alike are the same (`old` and `view`; a stretch of `view` and the rest of it);
    - from any of its cuts, `split` goes on as it would on the rest of the text alone, so once a
      cut made again in the stretch is also a cut of `old` in the text both end with, the parts
      that follow are `old`'s."""
    if not (view and old):
        return split(view)
    if view == old:
        return list(old_parts)
    ends = list(accumulate(map(len, old_parts)))
    head = 0  # the parts `old` and `view` begin with alike, a part at a time: no copies of the texts
    for part in old_parts:
        if not view.startswith(part, head):
            break
        head += len(part)
    tail = 0
    for part in reversed(old_parts):
        if not view.endswith(part, 0, len(view) - tail):
            break
        tail += len(part)
    head = min(head, len(old) - 1, len(view) - 1)  # a text's end is a cut: short of it
    k = bisect_right(ends, view.rfind("\n", 0, head) + 1 - MOST)  # old_parts[:k] are view's first parts
    start = ends[k - 1] if k else 0
    alike_from, shift = len(view) - tail, len(view) - len(old)
    after = {end + shift: n for n, end in enumerate(ends, 1)}  # a cut of old, where it falls in view
    stop = alike_from + 2 * MOST
    while stop < len(view):
        parts, end = split(view[start:stop]), start
        sure = view.rfind("\n", start, stop - 1) + 1 - MOST  # the stretch's cuts up to here are view's
        for n, part in enumerate(parts, 1):
            end += len(part)
            if end > sure:
                break
            if end >= alike_from and end in after:
                return _checked(old_parts[:k] + parts[:n] + old_parts[after[end]:], view)
        stop = alike_from + 2 * (stop - alike_from)  # the cuts are not in step yet: cut further
    return _checked(old_parts[:k] + split(view[start:]), view)


def _checked(parts: list[str], view: str) -> list[str]:
    """The parts, once sure they make the view (a few milliseconds on 28 MB): should the reasoning
    above ever fail, the view is cut whole, and what is stored is the view all the same."""
    return parts if "".join(parts) == view else split(view)
