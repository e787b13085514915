"""Named commit points where a test can kill overnight, to prove nothing is lost there.

`OVERNIGHT_KILL_AT=name` (tests only) SIGKILLs this process the first time the point
`name` is reached; `name@N` at its N-th passage. Unset, `point` costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

# Every point the fault-injection suite (tests/test_faults.py) kills at.
POINTS = (
    "run.created",          # the run's row is written, nothing measured yet
    "baseline.measured",    # the baseline measured, not yet stored
    "baseline.committed",   # the baseline row and the run's baseline stored together
    "experiment.proposed",  # a proposal in hand, not measured
    "experiment.measured",  # measured and decided, not yet stored
    "experiment.committed", # the experiment stored (and the best moved, for a keep)
    "run.ending",           # the experiments done, before holdout and confirmation
    "apply.backup",         # the backup written and synced, the file not yet replaced
    "apply.written",        # the new content in a temporary file, synced, not yet renamed
    "apply.replaced",       # the file replaced, its fingerprint not yet recorded
)

_passes: dict[str, int] = {}


def point(name: str) -> None:
    """Kills the process here when the test asked for it (a no-op otherwise)."""
    wanted = os.environ.get("OVERNIGHT_KILL_AT")
    if not wanted:
        return
    target, _, nth = wanted.partition("@")
    if target != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
