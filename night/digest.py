"""The morning's first read: one line per recipe of the night, with what to do next."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from overnight.core.state import process_gone
from overnight.core.numbers import fmt, gain_text

from .state import DONE, Nights


def lines(nights: Nights, night_id: int) -> list[str]:
    night = nights.night(night_id)
    items = nights.items(night_id)
    counts = Counter(shown(night, i) for i in items)
    until = f" (until {_clock(night['until'])})" if night["until"] else ""
    end = _clock(night["ended_at"]) if night["ended_at"] else "now"
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    out = [f"Night {night_id} ({night['status']}): {len(items)} recipe{'' if len(items) == 1 else 's'}, {_clock(night['started_at'])} -> {end}{until}: {tally}."]
    width = max(len(i.recipe) for i in items) if items else 0
    for item in items:
        run = nights.run_of(item)
        out.append(f"  {item.recipe:<{width}}  {shown(night, item):<8}  {outcome(nights, item, run)}")
    return out


def shown(night: dict, item) -> str:
    """An item a signal stopped stays 'running' in the store, so that --resume continues it; once the
    night is not running (stopped, or its process gone), nothing runs it, and the reader is told it stopped."""
    if item.status == "running" and (night["status"] != "running" or process_gone(night)):
        return "stopped"
    return item.status


def outcome(nights: Nights, item, run: dict | None) -> str:
    """What a recipe of the night came to, and the command to act on it."""
    if item.status in ("pending", "skipped") or run is None:
        return item.reason or "not started"
    if item.status == "failed":
        return item.reason or f"run {run['id']} failed"
    store = nights.store
    kept = store.counts(run["id"]).get("keep", 0)
    base, best = run["baseline_score"], run["best_score"]
    head = f"run {run['id']}: kept {kept} of {run['experiments'] or 0}, {fmt(base)} -> {fmt(best)}{_pct(base, best, run.get('goal'))}"
    if item.status == "running":
        return f"{head}; continues with `overnight night --resume`"
    if kept and run["best_experiment"]:
        seq = store.experiment(run["best_experiment"])["seq"]
        return f"{head}; apply: overnight apply {run['id']}:{seq}"
    return f"{head}; nothing beat the baseline"


def _pct(base, new, goal) -> str:
    if base is None or new is None:
        return ""
    return f" (gain {gain_text(base, new, goal)})"


def _clock(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M") if ts else "-"


def status_lines(store) -> list[str]:
    """The latest night in a line or two, for `overnight status`."""
    if not Nights.exists(store):
        return []
    nights = Nights(store, write=False)
    night = nights.latest()
    if night is None:
        return []
    items = nights.items(night["id"])
    done = [i for i in items if i.status in DONE]
    now = next((i for i in items if i.status == "running"), None)
    until = f", until {_clock(night['until'])}" if night["until"] else ""
    if night["status"] == "finished":
        tally = ", ".join(f"{n} {s}" for s, n in Counter(i.status for i in items).items())
        return [f"Night {night['id']} (finished, {_clock(night['started_at'])} -> {_clock(night['ended_at'])}): {tally}; "
                f"report: overnight report --night", ""]
    head = f"Night {night['id']} ({night['status']} since {_clock(night['started_at'])}{until}): {len(done)} of {len(items)} done"
    if now is not None:
        run = nights.run_of(now)
        head += f"; now {now.recipe}" + (f" (run {run['id']})" if run else "")
    waiting = [i.recipe for i in items if i.status == "pending"]
    if waiting:
        head += f"; then {', '.join(waiting)}"
    out = [head + "."]
    if night["status"] == "stopped" or (night["status"] == "running" and process_gone(night)):
        out.append("  It is not running: `overnight night --resume` continues it.")
    return out + [""]
