"""What `overnight run` and `overnight demo` show while the loop works.

On a terminal: rich's progress bar (experiments done, elapsed, time left, the best
score and the last outcome), redrawn in place and gone when the run ends, so the
summary stands alone. Elsewhere (a log file, CI): one plain line per experiment.
rich is imported only for a terminal, and before the run starts, so neither
`--help` nor the loop pays for it.

Long model calls must not look like a hang: while something is measured, a ticker
shows what is in flight (the experiment, model calls answered of expected, seconds),
every second on a terminal and every 30 s as a plain line, from the gateway's
`activity()` (polled; the loop is not involved).
"""

from __future__ import annotations

import atexit
import sys
import threading
import time

import click


class Progress:
    """Subscribes to the loop's events; `close()` ends the display (call it however the run ends)."""

    TICK_TTY = 1.0
    TICK_PIPED = 30.0

    def __init__(self, budget, quiet: bool = False, stream=None, activity=None):
        """activity: a callable that returns the gateway's `activity()` dict, when the run calls models."""
        self.budget = budget
        self.activity = activity
        self.measuring: dict[int, tuple[float, dict]] = {}  # seq (0: the baseline) -> (since, activity then)
        self.stopped = threading.Event()
        self.ticker: threading.Thread | None = None
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.bar = None
        self.task = None
        if self.tty and not quiet:
            import rich.progress  # noqa: F401  (a fifth of a second: paid here, not inside the run)

    def __call__(self, event) -> None:
        from overnight.core.numbers import fmt
        from overnight.sharing.printable import one_line, printable

        d = _fields(event)
        if event.kind == "warned":  # even when quiet: something is wrong, though the run goes on
            return self._say(f"Warning: {printable(d['message'], newlines=True)}.")
        if self.quiet:
            return
        if event.kind in ("run_started", "experiment_started"):
            return self._measuring(d.get("seq", 0))
        if event.kind != "experiment_finished":
            return
        self.measuring.pop(d["seq"], None)
        self.measuring.pop(0, None)
        if self.bar is not None:
            self.bar.update(self.task, now=self.in_flight())
        if not self.tty:
            # A reason may quote a metric's stderr: one line, its escapes shown, never obeyed.
            return self._say(f"#{d['seq']:<4} {d['status']:<12} {fmt(d.get('score')):>10}  {one_line(d['reason'])}")
        if self.bar is None:
            self._start(done=d["seq"] - 1)  # a resumed run starts where it stopped
        self.bar.update(self.task, completed=max(d["seq"], self.bar.tasks[0].completed),
                        best=fmt(d.get("best")), last=f"#{d['seq']} {d['status']}")

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False, soft_wrap=True)  # above the bar
        else:
            click.echo(line, file=self.stream)

    def _start(self, done: int) -> None:
        self.bar = _bar(self.stream, self.budget, self.started)
        self.task = self.bar.add_task("run", total=self.budget.experiments, completed=done, best="-", last="-", now="")
        self.bar.start()
        atexit.register(self.close)  # the cursor comes back even if the run ends in an error no one caught

    def _measuring(self, seq: int) -> None:
        self.measuring.pop(0, None)  # an experiment started: the baseline is done
        self.measuring[seq] = (time.monotonic(), self._activity())
        if self.ticker is None:
            if self.tty and self.bar is None:
                self._start(done=0)
            self.ticker = threading.Thread(target=self._tick, name="overnight-progress", daemon=True)
            self.ticker.start()

    def _activity(self) -> dict:
        try:
            return dict(self.activity()) if self.activity else {}
        except Exception:
            return {}

    def in_flight(self) -> str:
        """"#3 for 42 s, 12 of 40 model calls answered, 4 in flight" for what is measured now."""
        if not self.measuring:
            return ""
        seq, (since, then) = max(self.measuring.items())
        now = self._activity()
        what = f"#{seq}" if seq else "the baseline"
        line = f"{what} for {time.monotonic() - since:.0f} s"
        if now:
            answered, expected = now["answered"] - then.get("answered", 0), now["expected"] - then.get("expected", 0)
            line += f", {answered} of {expected} model calls answered" if expected else f", {answered} model calls answered"
            line += f", {now['in_flight']} in flight"
        return line

    def _tick(self) -> None:
        tick = self.TICK_TTY if self.tty else self.TICK_PIPED
        while not self.stopped.wait(tick):
            line = self.in_flight()
            if not line:
                continue
            if self.bar is not None:
                self.bar.update(self.task, now=line)
            else:
                click.echo(f"...   {line}", file=self.stream)

    def close(self) -> None:
        self.stopped.set()
        if self.bar is not None:
            self.bar.stop()


def _fields(event) -> dict:
    # Typed events carry their fields as attributes; untyped ones in a `data` dict.
    data = getattr(event, "data", None)
    return data if isinstance(data, dict) else vars(event)


def _bar(stream, budget, started: float):
    """rich's progress bar on `stream`, which is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar
    from rich.text import Text

    deadline = started + budget.minutes * 60 if budget.minutes is not None else None

    class Left(ProgressColumn):
        """rich's estimate from the pace so far, never past the end of `[budget] minutes`."""

        def render(self, task) -> Text:
            left = task.time_remaining
            if deadline is not None:
                by_clock = max(0.0, deadline - time.monotonic())
                left = by_clock if left is None else min(left, by_clock)
            if left is None:
                return Text("left -:--:--", style="progress.remaining")
            minutes, seconds = divmod(int(left), 60)
            return Text(f"left {minutes // 60}:{minutes % 60:02d}:{seconds:02d}", style="progress.remaining")

    return Bar(TextColumn("experiments"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), Left(),
               TextColumn("best {task.fields[best]} | last {task.fields[last]} | {task.fields[now]}"),
               console=Console(file=stream), transient=True, refresh_per_second=2)
