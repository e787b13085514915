"""Where overnight's own time goes between two measurements of a command metric: from the moment
a command is seen to exit to the start of the next one, step by step (medians).

Run: python bench/between.py [EXPERIMENTS]. Prints figures; asserts nothing. It runs
`overnight run` in this process on bench/wall_ratio.py's recipe (a command of about 50 ms, the
scripted agent, parallel 1) and marks the time at each step by wrapping the functions that end
it; the wrappers add a few microseconds each. With one experiment in flight, a command metric is
measured in the loop's own thread (core/measure.py), so the two hand-offs below are near zero.
The recorded seconds of a measurement run from just before its command is started to its exit,
so every step below is outside them: their sum is what bench/wall_ratio.py calls overnight's own
time between two measurements.
"""

from __future__ import annotations

import functools
import inspect
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from wall_ratio import make

from overnight.cli.main import main
from overnight.core import executor, loop, measure, process, record, schedule, store

STEPS = [  # (mark that ends the step, what happened since the mark before it)
    ("exit", None),
    ("run", "after the command: its leftovers killed, its output read"),
    ("measured", "the metric's number; the work folder handed to the sweeper"),
    ("back", "back in the event loop (a thread hand-off, unless measured in the loop's thread)"),
    ("decided", "secrets masked, the recipe folder checked, the decision"),
    ("told", "recorded (a keep stored at once, any other while the next command runs), the others told, the agent"),
    ("propose0", "the scheduler: controls, budget, the next task, the agent's context"),
    ("propose1", "the agent proposes"),
    ("once", "the proposal checked: its candidate, its diff left for later"),
    ("thread", "to the thread that measures (a hand-off, unless it is the loop's)"),
    ("popen", "its work folder, the candidate written, the command prepared"),
]

marks: list[tuple[str, float]] = []


def mark(name: str) -> None:
    marks.append((name, time.perf_counter()))


def wrap(owner, attr: str, before: str | None = None, after: str | None = None) -> None:
    fn = getattr(owner, attr)
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapped(*args, **kwargs):
            before and mark(before)
            result = await fn(*args, **kwargs)
            after and mark(after)
            return result
    else:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            before and mark(before)
            result = fn(*args, **kwargs)
            after and mark(after)
            return result
    setattr(owner, attr, wrapped)


def instrument() -> None:
    import subprocess

    wrap(process.Reading, "until_exit", after="exit")
    wrap(process, "run", after="run")
    wrap(executor.LocalExecutor, "measure", after="measured")
    wrap(measure, "scrubbed", before="back")
    wrap(store.Store, "commit_experiment", before="commit0", after="commit1")
    wrap(record.Recorder, "record", before="decided", after="told")
    wrap(loop.Loop, "_propose", before="propose0", after="propose1")
    wrap(loop, "once", before="once")
    wrap(measure, "_measure", before="thread")
    popen = subprocess.Popen.__init__

    def started(self, args, *rest, **kwargs):
        if kwargs.get("shell"):  # the metric's command, not the watchdog
            mark("popen")
        return popen(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = started


def cycles() -> list[dict[str, float]]:
    """Each stretch from a command's exit to the next command's start, as the time of each mark."""
    found, current = [], None
    for name, at in marks:
        if name == "exit":
            current = {"exit": at}
        elif current is not None and name not in current:
            current[name] = at
            if name == "popen":
                found.append(current)
                current = None
    return found


def main_(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 60
    instrument()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = make(root, n, "between")
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        sys.argv = ["overnight", "run", str(folder), "--yes", "--db", str(root / "store.db")]
        terminal = os.dup(2)
        os.dup2(os.open(root / "progress.txt", os.O_WRONLY | os.O_CREAT), 2)  # its lines, as wall_ratio.py captures them
        try:
            main()
        except SystemExit:
            pass
        finally:
            os.dup2(terminal, 2)
    found = [c for c in cycles()[2:] if all(name in c for name, _ in STEPS)]  # the first two warm up
    print(f"\n{len(found)} stretches from a command's exit to the next command's start (medians, ms):")
    durations = defaultdict(list)
    for c in found:
        for (prev, _), (name, _what) in zip(STEPS, STEPS[1:]):
            durations[name].append((c[name] - c[prev]) * 1000)
        durations["total"].append((c["popen"] - c["exit"]) * 1000)
    for name, what in STEPS[1:]:
        print(f"  {statistics.median(durations[name]):6.3f}  {what}")
    print(f"  {statistics.median(durations['total']):6.3f}  in all (bench/wall_ratio.py: overnight's own time between two)")
    inline = [(c["commit1"] - c["commit0"]) * 1000 for c in found if "commit1" in c and c["commit1"] < c["told"]]
    if inline:
        print(f"  of which the store's commit, in the {len(inline)} stretches that write it there: "
              f"{statistics.median(inline):.3f}; the other {len(found) - len(inline)} write it while the next command runs")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main_(sys.argv[1:])
