"""The per-example Pareto frontier of measured candidates, for the `llm` agent's reflective strategy.

A greedy search keeps one candidate, the best by average, and so loses a change
that fixed hard examples while breaking a few easy ones. The frontier keeps every
measured candidate's per-example train scores. A candidate *leads* an example
when no candidate scores higher on it (an example counts only once two known
scores differ there); the frontier is the leaders no other candidate dominates.
Parents are drawn from it in proportion to how many examples each leads, and two
leaders that win on different examples are worth merging.

What is known may be partial: a member's `scores` holds the scores seen, and
`complete` says every example not listed scored 1 (the loop may show an agent
only the failing examples, and only some of them).

Pure: no I/O, no model; randomness comes from the caller's `random.Random`, so a
seeded run draws the same parents. Screening a proposal on a minibatch against
its parent, and a paired keep rule, need exactly `sample` and `compare`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

PASS = 1.0  # the score of an example that is not failing


@dataclass
class Member:
    """One measured candidate, by the experiment (seq) that measured it."""

    key: int
    view: str
    scores: dict[str, float] = field(default_factory=dict)
    complete: bool = False
    mean: float | None = None
    parents: tuple[int, ...] = ()
    # The failing examples as the agent saw them (ExampleResult), to show the model.
    failing: list[Any] = field(default_factory=list)

    def score(self, example: str) -> float | None:
        if example in self.scores:
            return self.scores[example]
        return PASS if self.complete else None


@dataclass(frozen=True)
class Comparison:
    """How a candidate fares against another, example by example (both known)."""

    wins: tuple[str, ...]
    losses: tuple[str, ...]
    ties: tuple[str, ...]


@dataclass(frozen=True)
class Pair:
    """Two frontier members worth merging: each gets right what the other gets wrong."""

    a: int
    b: int
    a_wins: tuple[str, ...]
    b_wins: tuple[str, ...]


class Frontier:
    def __init__(self) -> None:
        self.members: dict[int, Member] = {}
        self._by_view: dict[str, int] = {}
        self._front: dict[int, set[str]] | None = None  # computed once per change: it is quadratic

    def __len__(self) -> int:
        return len(self.members)

    def add(self, member: Member) -> Member:
        self._front = None
        self.members[member.key] = member
        self._by_view[member.view] = member.key
        return member

    def learn(self, key: int, scores: dict[str, float], *, complete: bool = False, failing=None,
              mean: float | None = None) -> Member:
        """Adds what was just seen of a member; a complete view replaces a partial one."""
        m, self._front = self.members[key], None
        if complete:
            m.scores, m.complete = dict(scores), True
        else:
            m.scores.update(scores)
        if failing is not None and (complete or len(failing) >= len(m.failing)):
            m.failing = list(failing)
        if mean is not None:
            m.mean = mean
        return m

    def find(self, view: str) -> Member | None:
        key = self._by_view.get(view)
        return self.members.get(key) if key is not None else None

    def examples(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.members.values():
            seen.update(dict.fromkeys(m.scores))
        return list(seen)

    def contested(self) -> dict[str, float]:
        """Example -> the top known score, for the examples where known scores differ."""
        out = {}
        for e in self.examples():
            known = [s for s in (m.score(e) for m in self.members.values()) if s is not None]
            if len(known) > 1 and max(known) > min(known):
                out[e] = max(known)
        return out

    def leads(self) -> dict[int, set[str]]:
        """Each member's led examples (empty sets left out)."""
        top = self.contested()
        out: dict[int, set[str]] = {}
        for m in self.members.values():
            led = {e for e, best in top.items() if m.score(e) == best}
            if led:
                out[m.key] = led
        return out

    def front(self) -> dict[int, set[str]]:
        """The frontier: leaders that no other member dominates, with the examples each leads."""
        if self._front is None:
            leads = self.leads()
            examples = list(self.contested())
            self._front = {k: led for k, led in leads.items()
                           if not any(j != k and _dominates(self.members[j], self.members[k], examples) for j in leads)}
        return {k: set(led) for k, led in self._front.items()}

    def pick(self, rng: random.Random, fallback: int, exclude=()) -> int:
        """A parent drawn from the frontier, weighted by how many examples each leads."""
        front = {k: len(led) for k, led in self.front().items() if k not in exclude}
        if not front:
            return fallback
        keys = sorted(front)
        return rng.choices(keys, weights=[front[k] for k in keys])[0]

    def compare(self, a: Member | int, b: Member | int, examples=None) -> Comparison:
        """Where `a` beats, loses to and ties `b`, on `examples` (default: every example)."""
        a, b = self._member(a), self._member(b)
        wins, losses, ties = [], [], []
        for e in (self.examples() if examples is None else examples):
            sa, sb = a.score(e), b.score(e)
            if sa is None or sb is None:
                continue
            (wins if sa > sb else losses if sa < sb else ties).append(e)
        return Comparison(tuple(wins), tuple(losses), tuple(ties))

    def pairs(self, tried=(), with_key: int | None = None, most: int = 12) -> list[Pair]:
        """Frontier members that each win where the other loses; `tried` holds frozensets of keys.
        With `with_key`, only pairs holding that member; else pairs among the `most` members that
        lead the most examples (a large frontier has too many pairs to weigh them all)."""
        front = self.front()
        if with_key is not None:
            candidates = [(with_key, k) for k in sorted(front) if k != with_key] if with_key in front else []
        else:
            top = sorted(front, key=lambda k: (-len(front[k]), k))[:most]
            candidates = list(combinations(sorted(top), 2))
        out = []
        for a, b in candidates:
            if frozenset((a, b)) in tried:
                continue
            c = self.compare(a, b)
            if c.wins and c.losses:
                out.append(Pair(a, b, c.wins, c.losses))
        return out

    def sample(self, key: int, size: int, rng: random.Random) -> list[str]:
        """A minibatch for screening a child of `key`: half where the parent fails, the rest where it does not."""
        m = self.members[key]
        known = [e for e in self.examples() if m.score(e) is not None]
        failing = [e for e in known if m.score(e) < PASS]
        passing = [e for e in known if m.score(e) >= PASS]
        take = min(len(failing), max(size - len(passing), (size + 1) // 2))
        chosen = rng.sample(failing, take) + rng.sample(passing, min(len(passing), size - take))
        return sorted(chosen, key=known.index)

    def _member(self, m: Member | int) -> Member:
        return m if isinstance(m, Member) else self.members[m]


def lineage(meta: dict | None) -> str | None:
    """What an experiment was made from, as `overnight show` and the TUI say it ("#3 and #7, a
    merge"), from its stored meta; None when the agent did not say (the current best)."""
    parents = (meta or {}).get("parents") or []
    if not parents:
        return None
    named = " and ".join(f"#{p}" for p in parents)
    return named + (", a merge" if (meta or {}).get("merge") or len(parents) > 1 else "")


def leaders(rows: list[tuple[int, str, dict[str, float]]]) -> dict[int, set[str]]:
    """The frontier of measured candidates given as (seq, view, every train example's score)."""
    frontier = Frontier()
    for seq, view, scores in rows:
        if scores:
            frontier.add(Member(seq, view, dict(scores), complete=True))
    return frontier.front()


def _dominates(a: Member, b: Member, examples: list[str]) -> bool:
    """`a` is at least as good as `b` wherever `b` is known and better somewhere; equal scores go
    to the shorter view (simplicity wins ties), then to the earlier one."""
    better = False
    for e in examples:
        sa, sb = a.score(e), b.score(e)
        if sb is None:
            continue
        if sa is None or sa < sb:
            return False
        better = better or sa > sb
    return better or (len(a.view), a.key) < (len(b.view), b.key)
