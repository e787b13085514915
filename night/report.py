"""The morning's page: one self-contained HTML file per run or per night, plots drawn by
matplotlib as SVG and inlined, no script and no network, so it opens in any browser and can be
mailed as it is. matplotlib is imported here only, when a report is written."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from overnight.core.contracts import FAILURES
from overnight.core.numbers import fmt, gain_text
from overnight.core.record import bounded_diff

EXAMPLES_SHOWN = 20


@dataclass
class RunPage:
    """What the page says about one run, read from the store."""

    run: dict
    summary: str
    counts: dict[str, int]
    best: dict | None
    baseline: dict | None
    diff: str
    kept: list[dict]
    explained: bool
    fixed: list[dict] = field(default_factory=list)
    broke: list[dict] = field(default_factory=list)
    budget: list[tuple[str, float, str]] = field(default_factory=list)  # (label, share used, "n of cap")
    score_plot: str = ""
    budget_plot: str = ""
    commands: list[tuple[str, str]] = field(default_factory=list)  # (command, what it does)


def run_page(store, run_id: int) -> RunPage:
    run = store.run(run_id)
    rows = store.experiments(run_id)
    by_id = {r["id"]: r for r in rows}
    best = by_id.get(run["best_experiment"])
    baseline = by_id.get(run["baseline_experiment"]) or next((r for r in rows if r["status"] == "baseline"), None)
    contributions = {c["experiment_id"]: c for c in store.contributions(run_id)}
    kept = [{**r, "contribution": contributions.get(r["id"])} for r in rows if r["status"] == "keep"]
    page = RunPage(run, _summary_of(run), store.counts(run_id), best, baseline, _diff(store, run, baseline, best),
                   kept, bool(contributions), budget=_budget(run))
    if best and baseline and best["id"] != baseline["id"]:
        page.fixed, page.broke = _examples(store, baseline["id"], best["id"])
    page.commands = _commands(run, best)
    page.score_plot = score_plot(rows, run["goal"] or "maximize", run_id)
    page.budget_plot = budget_plot(page.budget, run_id) if page.budget else ""
    return page


def _commands(run: dict, best: dict | None) -> list[tuple[str, str]]:
    rid, out = run["id"], []
    if best and best["status"] == "keep":
        out += [(f"overnight diff {rid}:{best['seq']}", "the change, as above"),
                (f"overnight apply {rid}:{best['seq']}", "write it into your file; the previous version is kept")]
    out += [(f"overnight log {rid}", "every experiment, and why it was kept or not"), ("overnight tui", "review, apply, star or reject")]
    if run["status"] in ("stopped", "running"):
        out.append((f"overnight run {run['recipe']} --resume", "continue the run"))
    width = max(len(c) for c, _ in out)
    return [(c.ljust(width), what) for c, what in out]


def _summary_of(run: dict) -> str:
    try:
        import tomlkit

        return tomlkit.parse(run["recipe_text"] or "").unwrap().get("recipe", {}).get("summary", "")
    except Exception:
        return ""


def _diff(store, run: dict, baseline: dict | None, best: dict | None) -> str:
    """The best against the baseline, as the surface shows it (cells as label, address, old -> new)."""
    if not (baseline and best) or best["id"] == baseline["id"]:
        return ""
    try:
        from overnight.core.recipe import parse

        recipe = parse(run["recipe_text"], Path(run["recipe_path"]))
        surface = recipe.surface.build(recipe.dir)
        return bounded_diff(surface, store.candidate(baseline["candidate"]), store.candidate(best["candidate"]))
    except Exception:  # the recipe moved or no longer parses: the diff stored with the experiment
        return best["diff"] or ""


def _examples(store, base_id: int, best_id: int) -> tuple[list[dict], list[dict]]:
    """Examples the best does better on than the baseline (fixed) and worse (broke)."""
    before = {(e["example_id"], e["split"]): e for e in store.example_results(base_id)}
    fixed, broke = [], []
    for e in store.example_results(best_id):
        old = before.get((e["example_id"], e["split"]))
        if old is None or old["score"] == e["score"]:
            continue
        row = {**e, "before": old["score"], "before_output": old["output"]}
        (fixed if e["score"] > old["score"] else broke).append(row)
    return fixed[:EXAMPLES_SHOWN], broke[:EXAMPLES_SHOWN]


def _budget(run: dict) -> list[tuple[str, float, str]]:
    budget = json.loads(run["config"] or "{}").get("budget", {})
    out = []
    if budget.get("experiments"):
        out.append(("experiments", (run["experiments"] or 0) / budget["experiments"], f"{run['experiments'] or 0} of {budget['experiments']}"))
    if budget.get("minutes"):
        used = (run["seconds"] or 0) / 60
        out.append(("time", used / budget["minutes"], f"{used:.1f} of {budget['minutes']:g} min"))
    if budget.get("usd"):
        out.append(("money", (run["usd"] or 0) / budget["usd"], f"${run['usd'] or 0:.2f} of ${budget['usd']:g}"))
    if budget.get("tokens"):
        out.append(("tokens", (run["tokens"] or 0) / budget["tokens"], f"{run['tokens'] or 0} of {budget['tokens']}"))
    return out


# -- plots -------------------------------------------------------------------------

STYLE = {"keep": ("#2e7d32", "o", "kept"), "discard": ("#9e9e9e", "o", "discarded"),
         "guard_failed": ("#ef6c00", "s", "guard failed"), "baseline": ("#1565c0", "D", "baseline")}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def _svg(fig, salt: str) -> str:
    """The figure as an <img> source: an SVG data URI, so the page stays one file."""
    import matplotlib

    buf = io.BytesIO()
    # Text stays text (smaller, selectable); the salt keeps ids distinct and output stable.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def score_plot(rows: list[dict], goal: str, run_id: int) -> str:
    """The score over experiments: kept, discarded and failed points, and the best so far."""
    fig, ax = _figure(8, 3.6)
    scored = [r for r in rows if r["score"] is not None]
    for status, (color, marker, label) in STYLE.items():
        pts = [r for r in scored if r["status"] == status]
        if pts:
            hollow = status == "discard"
            ax.scatter([r["seq"] for r in pts], [r["score"] for r in pts], s=28, marker=marker, label=label,
                       facecolors="none" if hollow else color, edgecolors=color, zorder=3)
    line = _best_so_far(rows, goal)
    if line:
        ax.step([x for x, _ in line], [y for _, y in line], where="post", color="#2e7d32", lw=1.5, label="best so far", zorder=2)
    failed = [r for r in rows if r["status"] in FAILURES]
    if failed:
        ax.scatter([r["seq"] for r in failed], [0] * len(failed), marker="x", color="#c62828", s=30,
                   label="failed (no score)", transform=ax.get_xaxis_transform(), clip_on=False, zorder=4)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("experiment")
    ax.set_ylabel(f"score ({goal})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a legend of nothing makes matplotlib warn on stderr
        ax.legend(loc="best", fontsize=8, frameon=False)
    return _svg(fig, f"score-{run_id}")


def _best_so_far(rows: list[dict], goal: str) -> list[tuple[int, float]]:
    # Only the loop keeps, and a keep is always better than the best before it.
    points, best = [], None
    for r in rows:
        if r["status"] in ("baseline", "keep") and r["score"] is not None:
            best = r["score"]
        if best is not None:
            points.append((r["seq"], best))
    return points


def budget_plot(budget: list[tuple[str, float, str]], run_id: int) -> str:
    fig, ax = _figure(8, 0.5 + 0.45 * len(budget))
    labels = [b[0] for b in budget]
    shares = [min(b[1], 1.0) * 100 for b in budget]
    ax.barh(labels, [100] * len(budget), color="#eceff1")
    ax.barh(labels, shares, color=["#c62828" if s >= 100 else "#1565c0" for s in shares])
    for y, (_, _, text) in enumerate(budget):
        ax.text(101, y, text, va="center", fontsize=9)
    ax.set_xlim(0, 130)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("% of the budget used")
    ax.invert_yaxis()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _svg(fig, f"budget-{run_id}")


# -- pages -------------------------------------------------------------------------


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("overnight.night", "."), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["clock"] = lambda ts: dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"
    env.filters["duration"] = _duration
    env.globals["diff_class"] = _diff_class
    env.filters["gain"] = lambda t: "" if None in t[:2] else f"gain {gain_text(*t)}"
    return env


def _diff_class(line: str) -> str:
    if line.startswith(("+++", "---", "@@")):
        return "hunk"
    return "add" if line.startswith("+") else "del" if line.startswith("-") else ""


def _duration(seconds: float | None) -> str:
    s = int(round(seconds or 0))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def run_report(store, run_id: int) -> str:
    page = run_page(store, run_id)
    return _env().get_template("report.html.j2").render(title=f"overnight: run {run_id} of {page.run['recipe']}",
                                                       pages=[page], night=None, digest=[], written=time.time())


def night_report(nights, night_id: int) -> str:
    from . import digest

    night = nights.night(night_id)
    pages = []
    for item in nights.items(night_id):
        run = nights.run_of(item)
        if run is not None:
            pages.append(run_page(nights.store, run["id"]))
    rows = [(i, digest.shown(night, i), digest.outcome(nights, i, nights.run_of(i))) for i in nights.items(night_id)]
    return _env().get_template("report.html.j2").render(title=f"overnight: night {night_id}", pages=pages,
                                                       night=night, digest=rows, written=time.time())


def write(html: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
