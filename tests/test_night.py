"""A night of several recipes, as a person starts it at bedtime: one recipe fails and the others
run; a SIGKILL halfway loses nothing and `--resume` finishes the night without running a
finished recipe again; the digest names every recipe."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overnight.core.errors import OvernightError
from overnight.night.queue import parse_until, share
from tests.data.core.kit import alive, no_traceback, recipe, rows

# A scorer that sleeps while a file named `slow` sits in the recipe folder (so a test can kill mid-run).
SLOWABLE = '''
if [ -f "$OVERNIGHT_RECIPE_DIR/slow" ]; then sleep "$(cat "$OVERNIGHT_RECIPE_DIR/slow")"; fi
wc -c < "$1"
'''


def three_recipes(workspace: Path) -> list[Path]:
    fine = recipe(workspace / "fine", text="x" * 40 + "\n", proposals=["x" * 30 + "\n", "x" * 20 + "\n", "x" * 25 + "\n"],
                  metric='kind = "command"\nrun = "sh {recipe}/score.sh {file}"\ngoal = "minimize"')
    broken = recipe(workspace / "broken", text="CRASH at the baseline\n", proposals=["never measured\n"])
    slow = recipe(workspace / "slow", text="y" * 50 + "\n", proposals=[("y" * i) + "\n" for i in range(49, 29, -1)],
                  metric='kind = "command"\nrun = "sh {recipe}/slowable.sh {file}"\ngoal = "minimize"',
                  files={"slowable.sh": SLOWABLE})
    (slow / "slow").write_text("0.2")
    return [fine, broken, slow]


def overnight(workspace: Path, *args, **kw) -> subprocess.Popen:
    out = (workspace / "night.out").open("a")
    return subprocess.Popen([sys.executable, "-m", "overnight.cli.main", *map(str, args)], cwd=workspace,
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)


def finish(workspace: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "overnight.cli.main", *map(str, args)], cwd=workspace,
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def measured(db: Path, recipe_name: str) -> int:
    try:
        return rows(db, "select count(*) n from experiments e join runs r on r.id = e.run_id "
                        "where r.recipe = ? and e.seq > 0 and e.status != 'interrupted'", [recipe_name])[0]["n"]
    except Exception:  # the tables may not be there yet
        return 0


@pytest.mark.parametrize("kill", ["night", "night and its run", "SIGTERM"])
def test_a_night_of_three_survives_a_failing_recipe_and_a_sigkill(workspace, kill):
    fine, broken, slow = three_recipes(workspace)
    db = workspace / ".overnight" / "overnight.db"
    proc = overnight(workspace, "night", fine, broken, slow, "--yes", start_new_session=True)
    wait_for(lambda: measured(db, "slow") >= 4)
    child = rows(db, "select pid from night_items where recipe = 'slow'")[0]["pid"]
    if kill == "night":
        proc.send_signal(signal.SIGKILL)  # its run gets SIGTERM from the kernel and stops cleanly
    elif kill == "SIGTERM":
        proc.send_signal(signal.SIGTERM)  # the night stops its run cleanly, then itself
    else:
        os.killpg(proc.pid, signal.SIGKILL)  # the run dies too, mid-experiment, its row still 'running'
    assert proc.wait(30) == (143 if kill == "SIGTERM" else -signal.SIGKILL)
    wait_for(lambda: not alive(child), 30)
    halfway = measured(db, "slow")
    assert 0 < halfway < 20
    night = rows(db, "select * from nights")[0]
    assert night["status"] == ("stopped" if kill == "SIGTERM" else "running")  # a SIGKILL lets nobody say otherwise

    status = finish(workspace, "status")
    state = "stopped" if kill == "SIGTERM" else "running"
    assert f"Night 1 ({state} since" in status.stdout and "2 of 3 done" in status.stdout and "now slow" in status.stdout
    assert "`overnight night --resume` continues it" in status.stdout

    (slow / "slow").unlink()
    done = finish(workspace, "night", "--resume", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert no_traceback(done.stdout + done.stderr)
    assert "resuming with slow" in done.stdout

    runs = rows(db, "select * from runs order by id")
    assert [r["recipe"] for r in runs] == ["fine", "broken", "slow"]  # nothing ran twice; slow was resumed
    assert [r["status"] for r in runs] == ["finished", "failed", "finished"]
    seqs = [r["seq"] for r in rows(db, "select seq from experiments where run_id = 3 and status != 'interrupted' order by seq")]
    assert seqs == sorted(set(seqs)) and len(seqs) == 21  # the baseline and every proposal, each once
    items = rows(db, "select recipe, status, reason from night_items order by position")
    assert [i["status"] for i in items] == ["finished", "failed", "finished"]
    assert "The baseline could not be measured (crash)" in items[1]["reason"]

    digest = done.stdout[done.stdout.index("Night 1 (finished)"):]
    assert "3 recipes" in digest
    lines = digest.splitlines()
    assert any(line.split()[:2] == ["fine", "finished"] and "apply: overnight apply 1:" in line for line in lines)
    assert any(line.split()[:2] == ["broken", "failed"] and "baseline could not be measured" in line for line in lines)
    assert any(line.split()[:2] == ["slow", "finished"] and "kept 20 of 20" in line for line in lines)
    assert rows(db, "select status from nights")[0]["status"] == "finished"
    report = workspace / ".overnight" / "reports" / "night-1.html"
    assert report.exists() and "Report: .overnight/reports/night-1.html" in digest


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_night_a_signal_stopped_exits_as_a_run_does_and_its_digest_says_stopped(workspace, sig, code):
    """Nothing runs a stopped night's recipe any more: its digest must not call it running."""
    _, _, slow = three_recipes(workspace)
    fine = recipe(workspace / "fine", text="x" * 10 + "\n", proposals=["x" * 5 + "\n"])
    db = workspace / ".overnight" / "overnight.db"
    proc = overnight(workspace, "night", slow, fine, "--yes", start_new_session=True)
    wait_for(lambda: measured(db, "slow") >= 2)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C reaches the night and its run alike, as in a terminal
    else:
        os.kill(proc.pid, sig)  # SIGTERM from a service manager or `kill`: the night hands it on to its run
    assert proc.wait(60) == code
    out = (workspace / "night.out").read_text()
    digest = out[out.index("Night 1 (stopped)"):]
    assert "2 recipes" in digest and "1 stopped, 1 pending." in digest and "running" not in digest, digest
    assert any(line.split()[:2] == ["slow", "stopped"] and "continues with `overnight night --resume`" in line
               for line in digest.splitlines()), digest
    assert no_traceback(out)


def test_untrusted_recipes_are_refused_before_the_night_starts(workspace):
    fine, broken, _ = three_recipes(workspace)
    done = finish(workspace, "night", fine, broken)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: Recipes 'fine', 'broken' run commands or code and you have not trusted them")
    assert "overnight recipes trust fine" in done.stderr and "--yes" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and no_traceback(done.stderr)
    db = workspace / ".overnight" / "overnight.db"
    assert rows(db, "select * from nights") == [] and rows(db, "select * from runs") == []


def test_recipes_trusted_beforehand_need_no_yes(workspace):
    fine = recipe(workspace / "fine", text="x" * 10 + "\n", proposals=["x" * 5 + "\n"],
                  metric='kind = "command"\nrun = "sh {recipe}/score.sh {file}"\ngoal = "minimize"')
    assert finish(workspace, "recipes", "trust", fine, "--yes").returncode == 0
    done = finish(workspace, "night", fine, "--minutes", "1")
    assert done.returncode == 0, done.stderr
    assert "[1/1] fine: starting, up to 1.0 min" in done.stdout
    assert "fine  finished  run 1: kept 1 of 1" in done.stdout


def test_a_recipe_changed_after_the_night_began_is_refused_not_run(workspace):
    """Trust is settled at bedtime for the recipes as they are then; one changed meanwhile (here by
    the recipe before it) runs only once the person has looked at it again."""
    second = recipe(workspace / "second", text="x" * 10 + "\n", proposals=["x" * 5 + "\n"],
                    metric='kind = "command"\nrun = "sh {recipe}/score.sh {file}"\ngoal = "minimize"')
    changing = f'echo "touch {workspace}/ran-unreviewed" >> {second}/score.sh; wc -c < "$1"'
    first = recipe(workspace / "first", text="x" * 10 + "\n", proposals=["x" * 5 + "\n"],
                   metric='kind = "command"\nrun = "sh {recipe}/changes.sh {file}"\ngoal = "minimize"',
                   files={"changes.sh": changing})
    for folder in (first, second):
        assert finish(workspace, "recipes", "trust", folder, "--yes").returncode == 0
    done = finish(workspace, "night", first, second, "--minutes", "1")
    assert "ran-unreviewed" in (second / "score.sh").read_text()  # its code changed while the night ran
    assert "[1/2] first: finished" in done.stdout, done.stdout + done.stderr
    assert "[2/2] second: failed: Recipe 'second' runs commands or code (1 listed by" in done.stdout
    assert "and it changed since you trusted it on 20" in done.stdout
    assert not (workspace / "ran-unreviewed").exists()
    assert rows(workspace / ".overnight" / "overnight.db", "select count(*) n from runs where recipe = 'second'")[0]["n"] == 0
    assert no_traceback(done.stdout + done.stderr)


def test_a_night_whose_store_is_inside_a_recipe_folder_is_refused_before_it_starts(workspace):
    fine = recipe(workspace / "fine", text="x" * 10 + "\n", proposals=["x" * 5 + "\n"])
    done = finish(workspace, "night", fine, "--yes", "--db", fine / "o.db")
    assert done.returncode == 1 and no_traceback(done.stderr)
    assert done.stderr.startswith(f"Error: The night's store {fine / 'o.db'} is inside the folder of recipe 'fine'")
    assert not (fine / "o.db").exists() or rows(fine / "o.db", "select count(*) n from nights")[0]["n"] == 0
    inside_own = finish(workspace, "night", fine, "--yes", "--db", fine / ".overnight" / "o.db")
    assert inside_own.returncode == 0, inside_own.stdout + inside_own.stderr  # its own folder, left out of its digest


def test_a_night_item_is_given_the_run_its_own_process_started(tmp_path):
    from overnight.core.store import Store
    from overnight.night.state import Item, Nights

    store = Store(tmp_path / "store.db")
    started = time.time()
    ours = store.start_run(recipe="r", recipe_text="", config="{}", goal="minimize")
    store.update_run(ours, pid=4242)
    by_hand = store.start_run(recipe="r", recipe_text="", config="{}", goal="minimize")  # a moment later
    store.update_run(by_hand, pid=5151)
    item = Item(1, 1, 1, "r", "r", "running", None, None, 4242, None, started, None)
    assert Nights(store).run_of(item)["id"] == ours
    refused = Item(2, 1, 2, "r", "r", "running", None, None, 6363, None, started, None)
    assert Nights(store).run_of(refused) is None


def test_a_night_whose_every_recipe_failed_exits_1(workspace):
    broken = recipe(workspace / "broken", text="CRASH at the baseline\n", proposals=["never measured\n"])
    done = finish(workspace, "night", broken, "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[1/1] broken: failed: run 1 failed: The baseline could not be measured" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        "Every recipe of night 1 failed: read why above, fix them, and start the night again.")
    assert no_traceback(done.stdout + done.stderr)


def test_mistakes_are_one_sentence_and_start_nothing(cli, workspace):
    bad = recipe(workspace / "bad", proposals=[])
    (bad / "recipe.toml").write_text((bad / "recipe.toml").read_text() + '\n[notify]\non = ["finsihed"]\n')
    result = cli("night", bad, "--yes")
    assert result.exit_code == 2
    assert "recipe.toml:" in result.output and "[notify] on: unknown event 'finsihed' (did you mean 'finished'?)" in result.output

    result = cli("night")
    assert result.exit_code == 1 and "Name the recipes of the night" in result.output
    result = cli("night", "--resume")
    assert result.exit_code == 1 and "There is no unfinished night to resume" in result.output
    twin = recipe(workspace / "twin", proposals=[], name="bad")
    good = recipe(workspace / "good", proposals=[], name="bad")
    result = cli("night", twin, good, "--yes")
    assert result.exit_code == 1 and "Two recipes of the night are named 'bad'" in result.output
    result = cli("night", good, "--until", "7am", "--yes")
    assert result.exit_code == 1 and "--until '7am' is not a time of day: write it as HH:MM" in result.output
    assert not rows(workspace / ".overnight" / "overnight.db", "select * from runs")


def test_until_is_the_next_such_time_and_the_time_left_is_shared():
    evening = dt.datetime(2026, 11, 25, 22, 30).timestamp()
    assert dt.datetime.fromtimestamp(parse_until("07:00", evening)) == dt.datetime(2026, 11, 26, 7, 0)
    assert dt.datetime.fromtimestamp(parse_until("23:15", evening)) == dt.datetime(2026, 11, 25, 23, 15)
    with pytest.raises(OvernightError, match="not a time of day"):
        parse_until("25:00", evening)
    until = evening + 3 * 3600
    assert share(until, None, 3, evening) == pytest.approx(60)  # three hours, three recipes
    assert share(until, 20, 3, evening) == 20  # --minutes caps each share
    assert share(None, 20, 3, evening) == 20
    assert share(None, None, 3, evening) is None  # each recipe keeps its own budget
    assert share(until, None, 1, until - 30) == pytest.approx(0.5)


def test_a_recipe_gets_its_share_of_the_night(workspace):
    """--until ten minutes from now, two recipes: the first may use at most half of it."""
    fine = recipe(workspace / "fine", text="x" * 10 + "\n", proposals=["x" * 5 + "\n"])
    other = recipe(workspace / "other", text="x" * 10 + "\n", proposals=["x" * 5 + "\n"])
    until = (dt.datetime.now() + dt.timedelta(minutes=10, seconds=30)).strftime("%H:%M")
    done = finish(workspace, "night", fine, other, "--until", until, "--yes")
    assert done.returncode == 0, done.stderr
    first = next(line for line in done.stdout.splitlines() if line.startswith("[1/2] fine: starting"))
    minutes = float(first.split("up to ")[1].split(" min")[0])
    assert 4.5 <= minutes <= 5.3
    config = json.loads(rows(workspace / ".overnight" / "overnight.db", "select config from runs where id = 1")[0]["config"])
    # Printed to 0.1 from the full share, handed to the run to 0.001: they differ by 0.0505 at most.
    assert config["budget"]["minutes"] == pytest.approx(minutes, abs=0.051)
