"""A search along one ordered parameter that uses the order of its values.

The two ends come first, then a short coarse sweep that halves the widest gap, so the
shape of the curve is seen early. After that the search closes in on the best value
measured: it probes between the best and a neighbour, on the side the optimum most
likely lies (towards the better neighbour; towards a failure first, since scores that
rise up to a broken guard put the best allowed value at its edge), at the top of the
parabola through the three when they allow it (Brent's step), else halfway, like a
bisection. Once both neighbours of the best are next to it, the gap beside the next
best is filled, and so on until every value has been measured. No value is proposed
twice, and values in flight (parallel experiments) split gaps like measured ones and
push the next probe to the other side, so parallel proposals spread out.
"""

from __future__ import annotations

import math

from .search_space import Axis

COARSE = 5  # values swept (the two ends among them) before the search follows the scores
FAILED = -math.inf  # a failure or a broken guard: worse than any score


class OrderedSearch:
    def __init__(self, axis: Axis, coarse: int = COARSE):
        self.axis = axis
        self.coarse = min(axis.count, coarse)
        self.scores: dict[int, float] = {}  # index -> goodness (higher is better)
        self.pending: set[int] = set()

    def taken(self, i: int) -> bool:
        return i in self.scores or i in self.pending

    def propose(self, i: int) -> None:
        self.pending.add(i)

    def measured(self, i: int, goodness: float | None) -> None:
        self.pending.discard(i)
        self.scores[i] = FAILED if goodness is None else goodness

    def forget(self, i: int) -> None:
        """A value proposed but never measured (an interrupted experiment)."""
        self.pending.discard(i)

    def next(self) -> int | None:
        """The index to measure next, or None when every value is measured or in flight."""
        n = self.axis.count
        for end in (0, n - 1):
            if not self.taken(end):
                return end
        taken = sorted(self.scores.keys() | self.pending)
        if len(taken) >= n:
            return None
        real = {i: g for i, g in self.scores.items() if g > FAILED}
        if len(taken) >= self.coarse and real:
            probe = self._beside(taken, max(real, key=real.get))
            if probe is not None:
                return probe
        gaps = [(a, b) for a, b in zip(taken, taken[1:]) if b - a > 1]
        if len(taken) < self.coarse:  # the sweep: halve the widest gap
            return self._middle(*max(gaps, key=self._width))
        # The best is closed in on: fill the gap beside the best value measured so far.
        return self._middle(*max(gaps, key=lambda g: (max(self.scores.get(g[0], FAILED), self.scores.get(g[1], FAILED)),
                                                      self._width(g))))

    def _beside(self, taken: list[int], best: int) -> int | None:
        """A value between the best and a neighbour, on the side the optimum most likely lies.

        Towards the better neighbour (for a curve with one peak, the peak lies on that side);
        towards a failure before anything else, since scores that rise towards a broken guard
        put the best allowed value right at its edge; away from values still in flight."""
        at = taken.index(best)
        sides = []
        for other in (taken[at - 1] if at else None, taken[at + 1] if at + 1 < len(taken) else None):
            if other is None or abs(other - best) < 2:
                continue
            if other in self.pending:
                pull = -math.inf
            else:
                pull = math.inf if self.scores[other] == FAILED else self.scores[other]
            sides.append((pull, self._width((best, other)), other))
        if not sides:
            return None
        _, _, other = max(sides)
        a, b = sorted((best, other))
        vertex = self._vertex(taken, at)
        if vertex is not None and a < vertex < b and not self.taken(vertex):
            return vertex
        return self._middle(a, b)

    def _vertex(self, taken: list[int], at: int) -> int | None:
        """The top of the parabola through the best and its two neighbours, when all three are
        measured values (Brent's step): it lands near a smooth peak in one go."""
        if at == 0 or at + 1 >= len(taken):
            return None
        l, b, r = taken[at - 1], taken[at], taken[at + 1]
        if any(i not in self.scores or self.scores[i] == FAILED for i in (l, r)):
            return None
        xl, xb, xr = (self.axis.position(i) for i in (l, b, r))
        gl, gb, gr = self.scores[l], self.scores[b], self.scores[r]
        den = (xb - xl) * (gb - gr) - (xb - xr) * (gb - gl)
        if den == 0:
            return None
        x = xb - 0.5 * ((xb - xl) ** 2 * (gb - gr) - (xb - xr) ** 2 * (gb - gl)) / den
        return self._nearest(x, l, r)

    def _width(self, gap: tuple[int, int]) -> float:
        return abs(self.axis.position(gap[1]) - self.axis.position(gap[0]))

    def _middle(self, a: int, b: int) -> int:
        """The index between a and b whose position is nearest the middle of theirs."""
        return self._nearest((self.axis.position(a) + self.axis.position(b)) / 2, a, b)

    def _nearest(self, target: float, a: int, b: int) -> int:
        """The index strictly between a and b whose position is nearest target."""
        lo, hi = a + 1, b - 1
        while lo < hi:  # positions rise with the index
            mid = (lo + hi) // 2
            if self.axis.position(mid) < target:
                lo = mid + 1
            else:
                hi = mid
        if lo > a + 1 and abs(self.axis.position(lo - 1) - target) <= abs(self.axis.position(lo) - target):
            return lo - 1
        return lo
