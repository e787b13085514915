"""Notifications through apprise: ntfy, Telegram, Slack, Discord, email, the desktop and 100 more,
each one URL. Where and on which events is the person's config (`overnight config`), and a
recipe's [notify] overrides it. This plugin only observes `overnight_event`, as a third party's
would. A notification that cannot be delivered is logged and never stops the run, and URLs hold
credentials, so they are shown masked and never stored."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from overnight.core.contracts import FAILURES
from overnight.core.numbers import fmt, gain_text, scores_line
from overnight.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor


def _log():
    """Imported at the first warning: every run loads this plugin, and `logging` would otherwise
    be imported before its first command starts (core/ahead.py)."""
    import logging

    return logging.getLogger("overnight.notify")


SPEND_MARK = 0.8
FLUSH_SECONDS = 60  # at the end of a run, how long undelivered notifications may hold the exit


@dataclass
class Notice:
    """One message to send, to every URL the settings name for its event."""

    event: str  # one of core.settings.NOTIFY_EVENTS
    title: str
    body: str
    kind: str = "info"  # apprise's notify type: info, success, warning, failure
    attach: str | None = None


@dataclass
class Watch:
    """What this process knows of one run, to word its messages and fire each event once."""

    recipe: str
    settings: dict[str, Any]
    budget: Any = None
    spend: Any = None
    streak: int = 0
    failing_sent: bool = False
    spend_sent: bool = False


def facts(event) -> dict[str, Any]:
    """The one place that reads an event's payload: its fields as plain values."""
    d = {f.name: getattr(event, f.name) for f in fields(event)}
    f = {"kind": event.kind, "run": event.run_id, **{k: d.get(k) for k in (
        "recipe", "budget", "used", "notify", "seq", "status", "reason", "score", "best",
        "night", "digest", "report", "recipes", "baseline", "goal")}}
    if event.kind == "experiment_finished" and d.get("status") == "keep":
        f["best"] = d.get("score")  # whether or not the payload's best has moved yet
    s = d.get("summary")
    if s is not None:
        f.update(recipe=s.recipe, status=s.status, reason=s.stop_reason, kept=s.kept, experiments=s.experiments,
                 baseline=s.baseline, best=s.best, best_seq=s.best_seq, goal=s.goal)
    return f


def compose(f: dict[str, Any], w: Watch) -> Notice | None:
    """The message for an event, in a line or two and the command to act; None when there is none."""
    run, name = f["run"], w.recipe
    head = f"Run {run} of '{name}'"
    if f["kind"] == "new_best":
        # A new best is better than the baseline by definition, whatever the goal (events do not carry it).
        goal = "minimize" if None not in (f["score"], f["baseline"]) and f["score"] < f["baseline"] else "maximize"
        change = _change(f["baseline"], f["score"], goal)
        return Notice("new_best", f"overnight: {name} has a new best",
                      f"{head}: experiment {run}:{f['seq']} scores {fmt(f['score'])}{change}.\n"
                      f"Apply it: overnight apply {run}:{f['seq']}", "success")
    if f["kind"] == "run_finished":
        return _ending(f, w, head)
    if f["kind"] == "failing":
        return Notice("failing", f"overnight: {name} is failing",
                      f"{head}: {w.streak} experiments in a row failed (last: {f['status']}, {_line(f['reason'])}).\n"
                      f"See why: overnight log {run}", "failure")
    if f["kind"] == "spend_80":
        return Notice("spend_80", f"overnight: {name} used {SPEND_MARK:.0%} of its budget",
                      f"{head} has used {_used(w.budget, w.spend)}; best so far {fmt(f['best'])}.\n"
                      f"Watch it: overnight status", "warning")
    if f["kind"] == "night_finished":
        return Notice("night_finished", f"overnight: the night is over ({f['recipes']} recipes)",
                      f["digest"], "info", attach=f["report"])
    return None


def _ending(f: dict[str, Any], w: Watch, head: str) -> Notice:
    run, name, status = f["run"], w.recipe, f["status"]
    if status == "failed":
        return Notice("failed", f"overnight: {name} failed", f"{head} failed: {_line(f['reason'])}.\nSee why: overnight log {run}", "failure")
    best = f"best so far {fmt(f['best'])} ({run}:{f['best_seq']})" if f["best_seq"] else "nothing kept yet"
    if status == "stopped":
        return Notice("stopped", f"overnight: {name} stopped",
                      f"{head} stopped: {_line(f['reason'])}; {best}.\nResume it: overnight run {name} --resume", "warning")
    scores = scores_line(f["baseline"], f["best"], f.get("goal"))
    act = (f"Apply the best: overnight apply {run}:{f['best_seq']} (report: overnight report {run} --open)"
           if f["best_seq"] else f"Nothing beat the baseline; see: overnight report {run} --open")
    return Notice("finished", f"overnight: {name} finished",
                  f"{head} finished: {_line(f['reason'])}. Kept {f['kept']} of {f['experiments']}; {scores}.\n{act}", "success")


def _change(base: float | None, new: float | None, goal: str | None) -> str:
    if base is None or new is None:
        return ""
    return f" (baseline {fmt(base)}, gain {gain_text(base, new, goal)})"


def _line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0].rstrip(".")


def spent(budget, spend) -> float:
    """The largest share used of any capped part of the budget."""
    if budget is None or spend is None:
        return 0.0
    shares = []
    if budget.experiments:
        shares.append(spend.experiments / budget.experiments)
    if budget.minutes:
        shares.append(spend.seconds / (budget.minutes * 60))
    if budget.usd:
        shares.append(spend.usd / budget.usd)
    if budget.tokens:
        shares.append(spend.tokens / budget.tokens)
    return max(shares, default=0.0)


def _used(budget, spend) -> str:
    parts = []
    if budget.experiments:
        parts.append(f"{spend.experiments} of {budget.experiments} experiments")
    if budget.minutes:
        parts.append(f"{spend.seconds / 60:.0f} of {budget.minutes:g} minutes")
    if budget.usd:
        parts.append(f"${spend.usd:.2f} of ${budget.usd:g}")
    if budget.tokens:
        parts.append(f"{spend.tokens} of {budget.tokens} tokens")
    return ", ".join(parts)


class Notifier:
    """Follows runs through their events and sends on a thread of its own: a slow service never
    holds the loop, and the run's end waits (a while) for what is still on its way."""

    def __init__(self) -> None:
        self.watches: dict[int, Watch] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.pending: list[Future] = []
        self.lock = threading.Lock()

    def observe(self, event) -> None:
        if event.kind not in ("run_started", "night_finished") and not self._sends(event.run_id):
            return  # a run that sends nothing: its events need not be read (one per experiment)
        f = facts(event)
        if f["kind"] == "run_started":
            self._start(f)
            return
        if f["kind"] == "night_finished":
            settings = _settings(None)
            self._send(compose(f, Watch("", settings)), settings)
            self.flush()
            return
        w = self.watches.get(f["run"])
        if w is None or not w.settings["urls"]:
            return
        for kind in self._moments(f, w):
            notice = compose({**f, "kind": kind}, w)
            if notice is not None and notice.event in w.settings["on"]:
                self._send(notice, w.settings)
        if f["kind"] == "run_finished":
            self.watches.pop(f["run"], None)
            self.flush()

    def _sends(self, run_id) -> bool:
        w = self.watches.get(run_id)
        return w is not None and bool(w.settings["urls"])

    def _start(self, f: dict[str, Any]) -> None:
        settings = _settings(f["notify"])
        w = Watch(f["recipe"] or "", settings, f["budget"], f["used"])
        w.spend_sent = spent(w.budget, w.spend) >= SPEND_MARK  # a resumed run past the mark said so before
        self.watches[f["run"]] = w

    def _moments(self, f: dict[str, Any], w: Watch) -> list[str]:
        """Which notification moments this event makes: itself, and the ones derived from it."""
        if f["kind"] != "experiment_finished":
            return [f["kind"]]
        out = []
        if f["status"] in FAILURES:
            w.streak += 1
            threshold = min(w.settings["failing_after"], getattr(w.budget, "max_failures", w.streak) or w.streak)
            if w.streak >= threshold and not w.failing_sent:
                w.failing_sent = True
                out.append("failing")
        elif f["status"] not in ("interrupted", "duplicate"):
            w.streak, w.failing_sent = 0, False
        w.spend = f["used"] or w.spend
        if not w.spend_sent and spent(w.budget, w.spend) >= SPEND_MARK:
            w.spend_sent = True
            out.append("spend_80")
        return out

    def _send(self, notice: Notice | None, settings: dict[str, Any]) -> None:
        if notice is None or notice.event not in settings["on"] or not settings["urls"]:
            return
        with self.lock:
            if self.pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overnight-notify")
            for url in settings["urls"]:
                self.pending.append(self.pool.submit(deliver, url, notice))

    def flush(self, seconds: float = FLUSH_SECONDS) -> None:
        with self.lock:
            pending, self.pending = self.pending, []
        if pending:
            from concurrent.futures import wait

            wait(pending, timeout=seconds)


def _settings(overrides: dict[str, Any] | None) -> dict[str, Any]:
    from overnight.core.settings import NOTIFY_DEFAULTS, notify

    try:
        return notify(overrides)
    except Exception as exc:  # broken settings are said once per run, and nothing is sent
        _log().warning("overnight: notifications are off for this run: %s", exc)
        return {**NOTIFY_DEFAULTS, "urls": []}


def masked(url: str) -> str:
    """A URL as apprise shows it privately (passwords and tokens elided), without its options."""
    from overnight.core.secrets import mask_url

    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin:
            return plugin.url(privacy=True).split("?", 1)[0]
    except Exception:
        pass
    return mask_url(url)


def deliver(url: str, notice: Notice) -> bool:
    """Sends one notice to one URL; a failure is logged (masked) and returned, never raised."""
    try:
        import logging

        import apprise

        box = apprise.Apprise()
        if not box.add(url):
            _log().warning("overnight: %s is not a notification URL apprise knows; nothing was sent there.", masked(url))
            return False
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = bool(box.notify(body=notice.body, title=notice.title, notify_type=notice.kind,
                                 attach=notice.attach or None))
        if not ok:
            why = _last_line(captured.getvalue(), url)
            _log().warning("overnight: could not deliver the %s notification to %s%s", notice.event, masked(url), f": {why}" if why else ".")
        return ok
    except Exception as exc:  # a notification never stops a run
        _log().warning("overnight: could not deliver the %s notification to %s: %s", notice.event, masked(url),
                       _clean(f"{type(exc).__name__}: {exc}", url))
        return False


def _last_line(text: str, url: str) -> str:
    lines = [line.split(" - ", 2)[-1] for line in text.strip().splitlines() if line.strip()]
    return _clean(lines[-1], url) if lines else ""


def _clean(text: str, url: str) -> str:
    """Whatever apprise said, without the URL or any part of it that could be a credential."""
    from urllib.parse import urlsplit

    from overnight.core.secrets import MASK, scrub

    parts = urlsplit(url)
    secrets = [url, parts.password or "", parts.netloc, *parts.path.split("/")]
    return scrub(text, sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)).replace(MASK * 2, MASK)


notifier = Notifier()


@hookimpl
def overnight_event(event):
    try:
        notifier.observe(event)
    except Exception as exc:  # an observer never stops the run it watches
        _log().warning("overnight: notifications failed on %s: %s: %s", getattr(event, "kind", "?"), type(exc).__name__, exc)
