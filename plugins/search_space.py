"""What the search agent knows about its space: the values each parameter can take.

Each parameter becomes an `Axis` of indexed values: a choice list, the whole numbers
or steps of a range, or, for a number range with no step, a fine grid that only serves
to order and to find neighbours (such an axis is never "all measured"). A `Space` is the
product of its axes: its size tells whether it can be measured in full, and an index
tuple names one point of it.

Points are compared by `canon`, so 3, 3.0 and 3.0000000000001 are the same value, as
they are in the file a person reads.
"""

from __future__ import annotations

import math
import random
from typing import Any, Iterator

from overnight.core.contracts import Parameter

FINE = 2**16 + 1  # points of a number range with no step: ordering only
ENUMERABLE = 100_000  # a finite space this large is never listed point by point


def canon(value: Any) -> Any:
    """One spelling per value: numbers to 12 significant digits, everything else as is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(f"{float(value):.12g}")


def tidy(x: float) -> float:
    """0.30000000000000004 -> 0.3: values end up in people's files."""
    return float(f"{x:.12g}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Axis:
    """The values of one parameter, in order (numeric choices sorted)."""

    def __init__(self, p: Parameter, grid_points: int | None = None):
        self.name, self.param, self.log = p.name, p, bool(p.log)
        self.choices: list | None = None
        self.finite = True
        if p.choices is not None:
            values = list(p.choices)
            numeric = all(_number(v) for v in values)
            self.choices = sorted(values) if numeric else values
            self.ordered, self.count = numeric, len(values)
            return
        self.ordered = True
        lo, hi = float(p.min), float(p.max)
        if p.integer:
            self.lo, self.step = math.ceil(lo), int(p.step or 1)
            self.count = max(1, (math.floor(hi) - self.lo) // self.step + 1)
        elif p.step:
            self.lo, self.step = lo, float(p.step)
            self.count = max(1, math.floor((hi - lo) / self.step + 1e-9) + 1)
        else:
            self.lo, self.hi, self.step = lo, hi, None
            self.finite = hi == lo or grid_points is not None
            self.count = 1 if hi == lo else (grid_points or FINE)

    def value(self, i: int) -> Any:
        if self.choices is not None:
            return self.choices[i]
        if self.param.integer:
            return self.lo + i * self.step
        if self.step:
            return tidy(self.lo + i * self.step)
        if self.count == 1:
            return self.lo
        t = i / (self.count - 1)
        if self.log:
            return tidy(min(self.hi, math.exp(math.log(self.lo) + t * (math.log(self.hi) - math.log(self.lo)))))
        return tidy(self.lo + t * (self.hi - self.lo))

    def index(self, v: Any) -> int | None:
        """The index of a value of this axis; for a range with no step, the nearest one."""
        if self.choices is not None:
            c = canon(v)
            return next((i for i, x in enumerate(self.choices) if canon(x) == c), None)
        if not _number(v):
            return None
        if self.step is not None:
            at = (v - self.lo) / self.step
            i = round(at)
            return i if abs(at - i) < 1e-6 and 0 <= i < self.count else None
        if not self.lo - 1e-12 <= v <= self.hi + 1e-12:
            return None
        if self.count == 1:
            return 0
        if self.log:
            t = (math.log(max(v, self.lo)) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        else:
            t = (v - self.lo) / (self.hi - self.lo)
        return min(self.count - 1, max(0, round(t * (self.count - 1))))

    def position(self, i: int) -> float:
        """Where value i lies, on the scale the parameter is searched on."""
        if self.choices is not None and not self.ordered:
            return float(i)
        v = float(self.value(i))
        return math.log(v) if self.log and v > 0 else v


class Space:
    """The product of the axes of the parameters still free to move."""

    def __init__(self, parameters: list[Parameter], fixed: dict[str, Any] | None = None, grid_points: int | None = None):
        self.fixed = dict(fixed or {})
        self.axes = [Axis(p, grid_points) for p in parameters if p.name not in self.fixed]
        self.names = [p.name for p in parameters]
        self.finite = all(a.finite for a in self.axes)
        self.size = math.prod(a.count for a in self.axes) if self.finite else math.inf

    def values(self, idx: tuple[int, ...]) -> dict[str, Any]:
        out = dict(self.fixed)
        out.update({a.name: a.value(i) for a, i in zip(self.axes, idx)})
        return {n: out[n] for n in self.names}

    def index(self, values: dict[str, Any]) -> tuple[int, ...] | None:
        """The point these values name, or None when they lie outside this space."""
        for name, v in self.fixed.items():
            if name not in values or canon(values[name]) != canon(v):
                return None
        idx = []
        for a in self.axes:
            i = a.index(values.get(a.name))
            if i is None:
                return None
            idx.append(i)
        return tuple(idx)

    def key(self, values: dict[str, Any]) -> tuple:
        return tuple(canon(values.get(n)) for n in self.names)

    # -- walking it -------------------------------------------------------------------

    def shuffled(self, rng: random.Random) -> Iterator[tuple[int, ...]]:
        """Every point once, in a random order: sampling without replacement."""
        counts = [a.count for a in self.axes]
        for flat in self._flat_order(rng):
            idx = []
            for c in reversed(counts):
                flat, i = divmod(flat, c)
                idx.append(i)
            yield tuple(reversed(idx))

    def _flat_order(self, rng: random.Random) -> Iterator[int]:
        if self.size <= ENUMERABLE:
            yield from rng.sample(range(self.size), self.size)
            return
        seen: set[int] = set()
        while len(seen) < self.size:  # too many to list: random draws, each point once
            flat = rng.randrange(self.size)
            if flat not in seen:
                seen.add(flat)
                yield flat

    def near(self, idx: tuple[int, ...], rng: random.Random, taken) -> tuple[int, ...] | None:
        """A point not taken, as close to idx as a short random walk outwards finds one."""
        if not self.axes:
            return None
        widest = max(a.count for a in self.axes)
        radius = 1
        while radius < 2 * widest:
            for _ in range(4 * len(self.axes) + 4):
                moved = tuple(min(a.count - 1, max(0, i + rng.randint(-radius, radius))) for a, i in zip(self.axes, idx))
                if not taken(moved):
                    return moved
            radius *= 2
        for _ in range(2000):  # anywhere at all
            moved = tuple(rng.randrange(a.count) for a in self.axes)
            if not taken(moved):
                return moved
        if self.finite and self.size <= ENUMERABLE:
            return next((p for p in self.shuffled(rng) if not taken(p)), None)
        return None
