"""What `overnight run` shows while it works: a progress bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

from tests.data.core.kit import no_traceback, recipe

PROPOSALS = ["hello world\n", "hi\n", "CRASH\n", "h\n"]
FAST = 'kind = "command"\nrun = "sh {recipe}/score.sh {file}"\ngoal = "minimize"'
SLOW = FAST.replace("sh {recipe}", "sleep 0.3; sh {recipe}")


def in_a_terminal(args: list[str], cwd, env: dict) -> str:
    """Runs overnight on a real pseudo-terminal, 100 columns wide, and returns all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", "from overnight.cli.main import main; main()", *args],
                            stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) == 0, seen.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return seen.decode(errors="replace")


def test_a_terminal_shows_a_bar_with_the_time_left_then_only_the_summary(workspace):
    folder = recipe(workspace / "short", proposals=PROPOSALS, metric=SLOW, budget="experiments = 4")
    env = {**os.environ, "OVERNIGHT_DB": str(workspace / "run.db"), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)

    out = in_a_terminal(["run", str(folder), "--yes"], workspace, env)

    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "experiments" in plain and "4/4" in plain and re.search(r"best \d+ \| last #4 keep", plain)
    assert re.search(r"left \d:\d\d:\d\d", plain)  # rich's estimate once it has a pace
    assert "\x1b[?25h" in out  # the cursor is back
    # The bar is gone before the summary: the summary's first line starts on a cleared line.
    bar_ends = out.rindex("4/4")
    summary = out.index("Run 1 of 'short' finished")
    assert bar_ends < summary and "\x1b[2K" in out[bar_ends:summary]
    assert not re.search(r"^#1 +discard", plain, re.M)  # no plain lines on a terminal
    assert no_traceback(plain)


def test_off_a_terminal_each_experiment_is_one_plain_line(workspace):
    folder = recipe(workspace / "short", proposals=PROPOSALS, metric=FAST, budget="experiments = 4")
    done = subprocess.run([sys.executable, "-c", "from overnight.cli.main import main; main()", "run", str(folder), "--yes"],
                          capture_output=True, text=True, cwd=workspace, timeout=120,
                          env={**os.environ, "OVERNIGHT_DB": str(workspace / "run.db")})

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("#")]
    assert [line.split()[:2] for line in lines] == [["#1", "discard"], ["#2", "keep"], ["#3", "crash"], ["#4", "keep"]]
    assert "\x1b[" not in done.stderr and "━" not in done.stderr
    assert "Run 1 of 'short' finished" in done.stdout


def test_quiet_shows_nothing_but_the_summary(workspace):
    folder = recipe(workspace / "short", proposals=PROPOSALS, metric=FAST, budget="experiments = 4")
    done = subprocess.run([sys.executable, "-c", "from overnight.cli.main import main; main()", "run", str(folder),
                           "--yes", "--quiet"], capture_output=True, text=True, cwd=workspace, timeout=120,
                          env={**os.environ, "OVERNIGHT_DB": str(workspace / "run.db")})

    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith("#")]
    assert "Kept 2 of 4 experiments" in done.stdout


def test_help_imports_no_display_or_retry_library():
    probe = ("import json, sys\nsys.argv = ['overnight', '--help']\nfrom overnight.cli.main import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'tenacity', 'pyphen', 'litellm'})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
