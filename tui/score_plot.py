"""The score over experiments: best-so-far line, kept and discarded points, failures marked."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from overnight.core.numbers import gain

# More points than this are thinned (evenly) before plotting: a terminal has fewer
# columns than that anyway, and plotting stays quick for 10,000 experiments.
MOST_POINTS = 800
FAILED = ("crash", "timeout")


class ScorePlot(PlotextPlot):
    def __init__(self, goal: str = "maximize", **kwargs) -> None:
        super().__init__(**kwargs)
        self.goal = goal
        self.rows: dict[int, dict] = {}

    def add_rows(self, rows: list[dict]) -> None:
        for row in rows:
            self.rows[row["id"]] = row
        self.replot()

    def series(self) -> dict[str, tuple[list[int], list[float]]]:
        """The points to draw, by kind: best (a step line), kept, discarded, failed, guard."""
        rows = sorted(self.rows.values(), key=lambda r: r["seq"])
        scored = [r for r in rows if r["score"] is not None]
        out: dict[str, tuple[list, list]] = {k: ([], []) for k in ("best", "kept", "discarded", "failed", "guard")}
        best = None
        for r in rows:
            if r["status"] in ("baseline", "keep") and r["score"] is not None:
                if best is not None:  # the step: the old best up to here, then the new one
                    out["best"][0].append(r["seq"])
                    out["best"][1].append(best)
                best = r["score"]
                out["best"][0].append(r["seq"])
                out["best"][1].append(best)
        if best is not None and rows and rows[-1]["seq"] > out["best"][0][-1]:
            out["best"][0].append(rows[-1]["seq"])
            out["best"][1].append(best)
        bottom = min((r["score"] for r in scored), default=0.0)
        for r in rows:
            status, score = r["status"], r["score"]
            if status in ("baseline", "keep") and score is not None:
                kind = "kept"
            elif status in FAILED:
                kind, score = "failed", bottom  # no score: marked along the bottom
            elif status == "guard_failed" and score is not None:
                kind = "guard"
            elif status == "discard" and score is not None:
                kind = "discarded"
            else:
                continue
            out[kind][0].append(r["seq"])
            out[kind][1].append(score)
        return {k: (v if k == "best" else _thin(*v)) for k, v in out.items()}

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
        last = max(series["best"][0])
        ticks = sorted({round(i * last / 4) for i in range(5)})  # experiments are whole numbers
        plt.xticks(ticks, [str(t) for t in ticks])
        self.refresh()


def _thin(xs: list, ys: list) -> tuple[list, list]:
    if len(xs) <= MOST_POINTS:
        return xs, ys
    step = len(xs) / MOST_POINTS
    keep = sorted({int(i * step) for i in range(MOST_POINTS)} | {len(xs) - 1})
    return [xs[i] for i in keep], [ys[i] for i in keep]
