"""The line diff of every text surface: `diff -u` of two texts, also of long ones.

difflib compares two texts in time that grows with their length times the number of changes,
and on a file of megabytes that is minutes. Past `WHOLE` lines, the lines both texts begin and
end with are set aside, and the rest is cut at its anchors: the lines found once in each text,
in the same order (as patience diff finds them). difflib compares only the stretches between
two anchors, so a few changes anywhere in a long file are a diff of a few stretches; a caller
bounds how long they may be (core/record.py).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from itertools import compress

CONTEXT = 3  # lines of context around each change, as `diff -u` shows them
WHOLE = 2000  # lines of both texts up to which difflib compares them whole
ANCHORS = 4096  # lines of a long text looked at as anchors, at most


def line_diff(old: str, new: str, name: str, whole: int = WHOLE, limit: int | None = None) -> str | None:
    """`diff -u` of two texts, its hunks numbered as in the whole texts; None when difflib would
    compare stretches past `limit` characters (one that long, or several whose squares add up so)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    if len(a) + len(b) <= whole:
        if limit is not None and len(old) + len(new) > limit:
            return None
        return unified(a, b, opcodes(a, b, whole), name)
    stretches = _stretches(a, b)
    # difflib's time on a stretch grows at worst with its length squared: many short stretches are
    # quick, and the sum of the squares bounds the time as `limit` on one stretch would.
    if limit is not None and sum((sum(map(len, a[i1:i2])) + sum(map(len, b[j1:j2]))) ** 2
                                 for i1, i2, j1, j2 in stretches) > limit ** 2:
        return None
    return unified(a, b, _opcodes(a, b, stretches), name)


def opcodes(a: list[str], b: list[str], whole: int = WHOLE, autojunk: bool = True) -> list[tuple]:
    """difflib's opcodes turning lines `a` into lines `b`; past `whole` lines, stretch by stretch."""
    from difflib import SequenceMatcher  # here: the run's start does without difflib

    if len(a) + len(b) <= whole:
        return SequenceMatcher(None, a, b, autojunk=autojunk).get_opcodes()
    return _opcodes(a, b, _stretches(a, b), autojunk)


def _opcodes(a: list[str], b: list[str], stretches: list[tuple[int, int, int, int]], autojunk: bool = True) -> list[tuple]:
    """difflib's opcodes turning lines `a` into lines `b`, difflib run on each stretch alone."""
    from difflib import SequenceMatcher

    ops, i, j = [], 0, 0
    for i1, i2, j1, j2 in stretches:
        ops.append(("equal", i, i1, j, j1))
        ops += [(tag, x1 + i1, x2 + i1, y1 + j1, y2 + j1)
                for tag, x1, x2, y1, y2 in SequenceMatcher(None, a[i1:i2], b[j1:j2], autojunk=autojunk).get_opcodes()]
        i, j = i2, j2
    ops.append(("equal", i, len(a), j, len(b)))
    merged: list[tuple] = []
    for op in ops:
        if op[1] == op[2] and op[3] == op[4]:
            continue
        if merged and op[0] == merged[-1][0] == "equal":
            merged[-1] = ("equal", merged[-1][1], op[2], merged[-1][3], op[4])
        else:
            merged.append(op)
    return merged


def _stretches(a: list[str], b: list[str]) -> list[tuple[int, int, int, int]]:
    """(i1, i2, j1, j2) of each stretch left to compare: between the common head and tail, cut at
    the anchors; what lies outside them is alike."""
    head = alike(a, b)
    tail = alike(a, b, most=min(len(a), len(b)) - head, end=True)
    ends = (len(a) - tail, len(b) - tail)
    if ends[0] + ends[1] - 2 * head <= WHOLE:  # one change, or a few close together: no anchors needed
        return [(head, ends[0], head, ends[1])] if ends != (head, head) else []
    out, i, j = [], head, head
    for ai, bj in [*_anchors(a, b, head, *ends), ends]:
        if a[i:ai] != b[j:bj]:  # between two anchors most stretches are alike
            out.append((i, ai, j, bj))
        i, j = ai + 1, bj + 1
    return out


def _anchors(a: list[str], b: list[str], start: int, end_a: int, end_b: int) -> list[tuple[int, int]]:
    """Lines found once in a[start:end_a] and once in b[start:end_b], as (i, j): the longest run
    of them in the same order in both, among at most `ANCHORS` lines of `a` taken evenly (the
    stretches between them are a hundred lines or so; comparing those costs less than looking
    at every line in Python)."""
    step = max(1, (end_a - start) // ANCHORS)
    looked_at = set(a[start:end_a:step])
    # Only the lines looked at are counted and found in `b`, and the loops over every line run in C:
    # counting every line of both texts, and a loop in Python over `b`, took longest.
    in_a = Counter(filter(looked_at.__contains__, a[start:end_a]))
    found = list(compress(range(start, end_b), map(looked_at.__contains__, b[start:end_b])))
    in_b = Counter(b[j] for j in found)
    at_b = {b[j]: j for j in found if in_a[b[j]] == 1 and in_b[b[j]] == 1}
    pairs = [(i, at_b[a[i]]) for i in range(start, end_a, step) if a[i] in at_b]
    # The longest increasing run of j (patience sorting): tops[k] ends the best run of length k + 1.
    tops: list[int] = []
    top_index: list[int] = []
    before = [-1] * len(pairs)
    for n, (_, j) in enumerate(pairs):
        k = bisect_left(tops, j)
        before[n] = top_index[k - 1] if k else -1
        if k == len(tops):
            tops.append(j)
            top_index.append(n)
        else:
            tops[k], top_index[k] = j, n
    run, n = [], top_index[-1] if top_index else -1
    while n >= 0:
        run.append(pairs[n])
        n = before[n]
    return run[::-1]


def unified(a: list[str], b: list[str], ops: list[tuple], name: str, n: int = CONTEXT) -> str:
    """The lines of `diff -u` from difflib's opcodes, as difflib.unified_diff writes them."""
    out = []
    for group in _groups(ops, n):
        if not out:
            out += [f"--- a/{name}\n", f"+++ b/{name}\n"]
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in a[i1:i2]]
                continue
            if tag in ("replace", "delete"):
                out += ["-" + line for line in a[i1:i2]]
            if tag in ("replace", "insert"):
                out += ["+" + line for line in b[j1:j2]]
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def _groups(ops: list[tuple], n: int):
    """difflib's SequenceMatcher.get_grouped_opcodes, for opcodes made here."""
    codes = list(ops) or [("equal", 0, 1, 0, 1)]
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = tag, max(i1, i2 - n), i2, max(j1, j2 - n), j2
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)
    group = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > n + n:
            group.append((tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - n), max(j1, j2 - n)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _range(start: int, stop: int) -> str:
    """A hunk's range as `diff -u` writes it (difflib's _format_range_unified)."""
    beginning, length = start + 1, stop - start
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"


def alike(a, b, most: int | None = None, end: bool = False) -> int:
    """How many items (lines, characters) sequences `a` and `b` begin with alike (with `end`: end
    with), `most` at most. By slices that double while alike, then halve: a run of n alike items
    costs compares of a few times n items, however long the sequences."""
    def same(i: int, j: int) -> bool:  # items i to j are alike (counted from the end, with `end`)
        return a[len(a) - j:len(a) - i] == b[len(b) - j:len(b) - i] if end else a[i:j] == b[i:j]

    low, high, step = 0, min(len(a), len(b), len(a) if most is None else most), 1
    while low + step <= high and same(low, low + step):
        low, step = low + step, 2 * step
    high = min(high, low + step - 1)  # the first difference is within the last step
    while low < high:
        mid = (low + high + 1) // 2
        if same(low, mid):
            low = mid
        else:
            high = mid - 1
    return low
