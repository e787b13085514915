"""One run's experiments as the dashboard holds them: a few numbers a row, text only for rows shown.

As dicts of text, 100,000 experiments take half a gigabyte and seconds to read. Here they
are five arrays (about 4 MB) read from one covering index of the store; the table asks
for the rationale and reason of the rows it shows, and keeps a bounded cache of them.
Only the UI's thread changes a ledger once it is shown (a worker builds the first one).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import islice
from math import isnan, nan
from typing import Iterable

from overnight.core.contracts import STATUSES

# Rationales and reasons kept at once: many screens of rows, not the whole run.
TEXT_KEPT = 4000


class Ledger:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.ids = array("q")  # rising: rows arrive in the order they were recorded
        self.seqs = array("q")
        self.scores = array("d")  # nan: no score
        self.deltas = array("d")
        self.statuses = bytearray()  # an index into self.names
        self.names: list[str] = list(STATUSES)
        self.codes = {name: i for i, name in enumerate(self.names)}
        self.text: dict[int, tuple[str, str]] = {}  # id -> (rationale, reason), the rows shown lately
        self.in_order = True  # seq rises with id, so "newest first" is the arrival order reversed

    def __len__(self) -> int:
        return len(self.ids)

    # -- taking rows in ---------------------------------------------------------

    def extend(self, points: Iterable[tuple]) -> None:
        """(id, seq, status, score, delta) tuples of experiments, by rising id (as the store gives
        them). A status is its name, or its index in STATUSES (see `take`)."""
        points = iter(points)
        while chunk := list(islice(points, 4096)):
            self.take(chunk)

    def take(self, chunk: list[tuple]) -> None:
        """A batch of such tuples, taken a column at a time: 100,000 rows in a few hundredths of a
        second when the store gives each known status as its index (Store.experiment_points with
        codes=STATUSES), which is its code here too."""
        columns = list(zip(*chunk))
        ids = columns[0]
        if (not self.ids or ids[0] > self.ids[-1]) and list(ids) == sorted(set(ids)):
            self._append(columns)
            return
        for point in chunk:  # rows the loop updated (or a poll saw twice): few, one at a time
            if self.ids and point[0] <= self.ids[-1]:
                self._update(*point)
            else:
                self._append([[value] for value in point])

    def _append(self, columns: list) -> None:
        ids, seqs, statuses, scores, deltas = columns
        if self.in_order and ((self.seqs and seqs[0] < self.seqs[-1]) or list(seqs) != sorted(seqs)):
            self.in_order = False
        self.ids.extend(ids)
        self.seqs.extend(seqs)
        self.scores.extend([nan if v is None else v for v in scores])
        self.deltas.extend([nan if v is None else v for v in deltas])
        try:
            self.statuses.extend(statuses)  # codes already; on an error, nothing was added
        except (TypeError, ValueError):
            self.statuses.extend([self.code(v) for v in statuses])

    def add_rows(self, rows: list[dict]) -> tuple[list[int], list[int]]:
        """Light rows from a poll: (indices of new rows, indices of rows that changed)."""
        before = len(self)
        changed = [i for r in rows if (i := self.index_of(r["id"])) is not None]
        self.extend((r["id"], r["seq"], r["status"], r["score"], r["delta"]) for r in rows)
        self.add_text(rows)
        return list(range(before, len(self))), changed

    def add_text(self, rows: Iterable[dict]) -> None:
        for r in rows:
            self.text[r["id"]] = (r["rationale"] or "", r["reason"] or "")
        if len(self.text) > TEXT_KEPT:  # the oldest looked at go first
            for exp_id in list(self.text)[: len(self.text) - TEXT_KEPT]:
                del self.text[exp_id]

    def _update(self, exp_id: int, seq: int, status: str, score: float | None, delta: float | None) -> None:
        i = self.index_of(exp_id)
        if i is not None:
            self.seqs[i], self.statuses[i] = seq, self.code(status)
            self.scores[i], self.deltas[i] = nan if score is None else score, nan if delta is None else delta

    def code(self, status: str | int) -> int:
        if type(status) is int:  # its index in STATUSES, as the store gives it
            return status
        if status not in self.codes:  # a status this version does not know: shown as it is
            self.codes[status] = len(self.names)
            self.names.append(status)
        return self.codes[status]

    # -- reading ----------------------------------------------------------------

    def index_of(self, exp_id: int) -> int | None:
        i = bisect_left(self.ids, exp_id)
        return i if i < len(self.ids) and self.ids[i] == exp_id else None

    def status(self, i: int) -> str:
        return self.names[self.statuses[i]]

    def score(self, i: int) -> float | None:
        value = self.scores[i]
        return None if isnan(value) else value

    def delta(self, i: int) -> float | None:
        value = self.deltas[i]
        return None if isnan(value) else value

    def last_seq(self) -> int:
        """The largest experiment number: the newest row's, in a run read in order (0 with no rows)."""
        if not self.seqs:
            return 0
        return self.seqs[-1] if self.in_order else max(self.seqs)

    def row(self, i: int) -> dict:
        """Row `i` as the screens use it; its text is empty until it has been read."""
        exp_id = self.ids[i]
        rationale, reason = self.text.get(exp_id, ("", ""))
        return {"id": exp_id, "run_id": self.run_id, "seq": self.seqs[i], "status": self.status(i),
                "score": self.score(i), "delta": self.delta(i), "rationale": rationale, "reason": reason}

    # -- between processes (tui/prefetch.py) -----------------------------------------

    def packed(self, start: int = 0) -> tuple:
        """Rows `start` on as bytes, for `marshal`: what another process read, taken in with no row made
        (`add_packed`). The names of the statuses go whole: a code keeps its meaning from one part to the next."""
        return (self.run_id, self.ids[start:].tobytes(), self.seqs[start:].tobytes(), self.scores[start:].tobytes(),
                self.deltas[start:].tobytes(), bytes(self.statuses[start:]), tuple(self.names), self.in_order)

    def add_packed(self, packed: tuple) -> None:
        """Rows from `packed`, after those already here (the parts of one ledger, in order)."""
        run_id, ids, seqs, scores, deltas, statuses, names, in_order = packed
        columns = (self.ids, ids), (self.seqs, seqs), (self.scores, scores), (self.deltas, deltas)
        if run_id != self.run_id or len({len(data) // column.itemsize for column, data in columns} | {len(statuses)}) != 1:
            raise ValueError("this is not a part of this ledger")
        for column, data in columns:
            column.frombytes(data)
        self.statuses.extend(statuses)
        self.names = list(names)
        self.codes = {name: i for i, name in enumerate(self.names)}
        self.in_order = in_order


class Rows:
    """The ledger's rows as a read-only list of dicts (made on demand, one at a time)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __len__(self) -> int:
        return len(self.ledger)

    def __getitem__(self, i: int) -> dict:
        if i < 0:
            i += len(self.ledger)
        if not 0 <= i < len(self.ledger):
            raise IndexError(i)
        return self.ledger.row(i)

    def __iter__(self):
        return (self.ledger.row(i) for i in range(len(self.ledger)))

    def __bool__(self) -> bool:
        return len(self.ledger) > 0
