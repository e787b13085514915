"""The score over experiments: best-so-far line, kept and discarded points, failures marked."""

from __future__ import annotations

from itertools import compress

from textual_plotext import PlotextPlot

from .ledger import Ledger

# More points than this are thinned (evenly) before plotting: a terminal has fewer
# columns than that anyway, and plotting stays quick for 100,000 experiments.
MOST_POINTS = 800
FAILED = ("crash", "timeout")
KINDS = ("best", "kept", "discarded", "failed", "guard")


class ScorePlot(PlotextPlot):
    """Drawn from the run's ledger (compact arrays shared with the table), never from rows of text."""

    def __init__(self, goal: str = "maximize", **kwargs) -> None:
        super().__init__(**kwargs)
        self.goal = goal
        self.ledger = Ledger(0)

    def show_ledger(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.replot()

    def series(self) -> dict[str, tuple[list[int], list[float]]]:
        """The points to draw, by kind: best (a step line), kept, discarded, failed, guard.

        Each row's kind comes from its status code by one `translate` of the ledger's bytes, and a
        kind's rows are found by `compress` or `find` on those bytes: the per-row work is done in C,
        so 100,000 rows take a few milliseconds. A kind with more rows than MOST_POINTS is thinned
        along the run (its first row in each of MOST_POINTS even stretches of rows, in the order
        they arrived: the experiments' order but for a few in flight at once). Only the kept
        points, the best line's steps, are all read, and sorted when they arrived out of order."""
        ledger = self.ledger
        seqs, scores, n = ledger.seqs, ledger.scores, len(ledger)
        kind_of = [_kind(name) for name in ledger.names]
        kinds = ledger.statuses.translate(bytes(KINDS.index(k) if k else 0 for k in kind_of).ljust(256, b"\0"))
        out: dict[str, tuple[list, list]] = {k: ([], []) for k in KINDS}
        kept = [i for i in _rows(kinds, KINDS.index("kept"), n) if scores[i] == scores[i]]  # nan: no score
        if not ledger.in_order:
            kept.sort(key=seqs.__getitem__)
        best = None
        for i in kept:
            if best is not None:  # the step: the old best up to here, then the new one
                out["best"][0].append(seqs[i])
                out["best"][1].append(best)
            best = scores[i]
            out["best"][0].append(seqs[i])
            out["best"][1].append(best)
        last = ledger.last_seq()
        if best is not None and last > out["best"][0][-1]:
            out["best"][0].append(last)
            out["best"][1].append(best)
        out["best"] = _thin_steps(*out["best"])
        shown = {"kept": _thin(kept)}
        for kind in ("discarded", "failed", "guard"):
            rows = _rows(kinds, KINDS.index(kind), n, MOST_POINTS)
            shown[kind] = rows if kind == "failed" else [i for i in rows if scores[i] == scores[i]]
        # Failures have no score: marked along the bottom of what is drawn.
        bottom = min((scores[i] for kind in ("kept", "discarded", "guard") for i in shown[kind]), default=0.0)
        for kind in KINDS[1:]:
            out[kind] = ([seqs[i] for i in shown[kind]], [bottom if kind == "failed" else scores[i] for i in shown[kind]])
        return out

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        series = self.series()
        if not series["best"][0]:
            plt.xlabel("no scores yet")
            self.refresh()
            return
        # The legend sits on the axis label line: inside the plot it would hide points.
        legend = ["─ best so far"]
        xs, ys = series["best"]
        plt.plot(xs, ys, marker="braille", color="cyan")
        # Discarded first, so kept points and failures are drawn over them.
        styles = (
            ("discarded", "·", "gray", "· discarded"),
            ("guard", "!", "magenta", "! guard failed"),
            ("failed", "x", "red", "x crash/timeout"),
            ("kept", "●", "green", "● kept"),
        )
        for kind, marker, color, label in styles:
            xs, ys = series[kind]
            if xs:
                plt.scatter(xs, ys, marker=marker, color=color)
                legend.append(label)
        plt.xlabel("experiment   " + "  ".join(reversed(legend)))
        ticks = x_ticks(max(series["best"][0]))
        plt.xticks(ticks, [str(t) for t in ticks])
        self.refresh()


def x_ticks(last: int) -> list[int]:
    """Whole experiment numbers at an even, round step (1, 2, 5, 10, 20, 50...), at most six of
    them: 0 2 4 6 for seven experiments, never 0 2 4 5 7."""
    step = next(m * 10**e for e in range(16) for m in (1, 2, 5) if last <= 5 * m * 10**e)
    return list(range(0, max(last, 0) + 1, step))


def _kind(status: str) -> str | None:
    if status in ("baseline", "keep"):
        return "kept"
    if status in FAILED:
        return "failed"
    return {"guard_failed": "guard", "discard": "discarded"}.get(status)


def _thin_steps(xs: list[int], ys: list[float]) -> tuple[list[int], list[float]]:
    """A best-so-far line of thousands of steps as a terminal draws it: the first and last point of each column."""
    if len(xs) <= 2 * MOST_POINTS:
        return xs, ys
    low, span = xs[0], (xs[-1] - xs[0]) or 1
    keep, column = [], None
    for j, x in enumerate(xs):
        at = int((x - low) * MOST_POINTS / span)
        if at != column:
            if keep and keep[-1] != j - 1:
                keep.append(j - 1)
            keep.append(j)
            column = at
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[j] for j in keep], [ys[j] for j in keep]


def _rows(kinds: bytearray, code: int, n: int, most: int | None = None) -> list[int]:
    """The indices of the rows of one kind; with `most`, at most that many, thinned along the run."""
    count = kinds.count(code)
    if most is None or count <= most:
        return list(compress(range(n), kinds.translate(bytes(1 if c == code else 0 for c in range(256)))))
    found = (kinds.find(code, n * j // most, n * (j + 1) // most) for j in range(most))
    return [i for i in found if i >= 0]


def _thin(indices: list[int]) -> list[int]:
    if len(indices) <= MOST_POINTS:
        return indices
    step = len(indices) / MOST_POINTS
    keep = sorted({int(i * step) for i in range(MOST_POINTS)} | {len(indices) - 1})
    return [indices[i] for i in keep]
