"""The score over experiments: best-so-far line, kept and discarded points, failures marked."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from overnight.core.numbers import gain

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
        """The points to draw, by kind: best (a step line), kept, discarded, failed, guard."""
        ledger = self.ledger
        seqs, scores, statuses = ledger.seqs, ledger.scores, ledger.statuses
        kind_of = [_kind(name) for name in ledger.names]
        points: dict[str, list[int]] = {k: [] for k in KINDS}  # ledger indices, by seq
        order = ledger.by_seq()
        for i in order:
            kind = kind_of[statuses[i]]
            if kind is not None and (kind == "failed" or scores[i] == scores[i]):  # nan: no score
                points[kind].append(i)
        out: dict[str, tuple[list, list]] = {k: ([], []) for k in KINDS}
        best = None
        for i in points["kept"]:
            if best is not None:  # the step: the old best up to here, then the new one
                out["best"][0].append(seqs[i])
                out["best"][1].append(best)
            best = scores[i]
            out["best"][0].append(seqs[i])
            out["best"][1].append(best)
        if best is not None and order and seqs[order[-1]] > out["best"][0][-1]:
            out["best"][0].append(seqs[order[-1]])
            out["best"][1].append(best)
        out["best"] = _thin_steps(*out["best"])
        bottom = min((v for v in scores if v == v), default=0.0)  # failures have no score: marked along the bottom
        for kind in KINDS[1:]:
            kept = _thin(points[kind])
            out[kind] = ([seqs[i] for i in kept], [bottom if kind == "failed" else scores[i] for i in kept])
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


def _thin(indices: list[int]) -> list[int]:
    if len(indices) <= MOST_POINTS:
        return indices
    step = len(indices) / MOST_POINTS
    keep = sorted({int(i * step) for i in range(MOST_POINTS)} | {len(indices) - 1})
    return [indices[i] for i in keep]
