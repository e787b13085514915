"""What a command metric reads from its command, at the edges: output past what is kept, and a
command a signal ended. The score is the command's own number, never overnight's note about it,
and the reason says what happened."""

from __future__ import annotations

import json

from overnight.core.decide import verdict
from tests.data.core.kit import no_traceback, recipe


def test_output_past_what_is_kept_is_read_without_the_note_that_says_so(workspace, cli):
    # 5, then 3 MB of text: the middle is not kept, and the line that says how much was cut holds
    # a number, which must never be taken for the score.
    script = 'import sys\nsys.stdout.write("5\\n" + "x" * 3_000_000 + "\\n")\n'
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "python3 {recipe}/big.py"',
                    files={"big.py": script}, proposals=["hello there\n"])
    done = cli("run", folder, "--yes")
    assert done.exit_code == 0, done.output
    rows = [json.loads(x) for x in cli("log", "--json").output.splitlines()]
    assert rows[0]["status"] == "baseline" and rows[0]["score"] == 5
    show = cli("show", "1:0").output
    assert len(show) < 6_000  # its trace: the end of the last line


def test_a_number_too_large_for_a_float_is_said_so_in_a_few_lines(workspace, cli):
    script = 'import sys\nsys.stdout.write("7" * 2_000_000 + "\\n")\n'
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "python3 {recipe}/big.py"',
                    files={"big.py": script}, proposals=["hello there\n"])
    done = cli("run", folder, "--yes")
    assert done.exit_code != 0 and no_traceback(done.output)
    assert "the command printed a number too large for a float: 777777777777..." in done.output
    assert len(done.output) < 12_000  # the trace that follows is cut to its last 8,000 characters


def test_a_command_a_signal_ended_says_which_signal(workspace, cli):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "kill -9 $$"', proposals=["hello there\n"])
    done = cli("run", folder, "--yes")
    assert done.exit_code != 0 and no_traceback(done.output)
    assert "the command was killed by signal 9 (SIGKILL)" in done.output
    assert "code None" not in done.output


def test_a_worse_score_on_a_tiny_scale_is_no_tie():
    # Scores of 1e-12: what a float rounds is a part in a billion of the score, not 1e-9 absolute.
    worse = verdict(1.9e-12, 1e-12, "minimize", 0.0, shorter=True)
    assert not worse.keep and worse.reason.startswith("worse than the best")
    same = verdict(1e-12 * (1 + 1e-12), 1e-12, "minimize", 0.0, shorter=True)
    assert same.keep and same.tie
    assert verdict(0.0, 0.0, "maximize", 0.0, shorter=True).tie
    assert not verdict(1e-320, 0.0, "minimize", 0.0, shorter=True).keep


def test_scores_near_the_largest_float_are_averaged_not_a_traceback(workspace, cli):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "echo score: 1.7e308"\nrepeats = 3',
                    proposals=["hello there\n"])
    done = cli("run", folder, "--yes")
    assert done.exit_code == 0 and no_traceback(done.output), done.output
    rows = [json.loads(x) for x in cli("log", "--json").output.splitlines()]
    assert rows[0]["score"] == 1.7e308


def test_a_command_that_starts_with_a_shell_word_is_not_called_missing(workspace, cli):
    folder = recipe(workspace / "r", metric='kind = "command"\nrun = "ulimit -t 5; echo score: 3"', proposals=["hello there\n"])
    done = cli("run", folder, "--yes")
    assert done.exit_code == 0 and "was not found" not in done.output, done.output
    assert json.loads(cli("log", "--json").output.splitlines()[0])["score"] == 3
