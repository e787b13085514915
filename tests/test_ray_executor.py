"""Measurements on a real Ray (one local Ray for the module, two logical CPUs): the same
experiments and decisions as on this machine, a worker killed mid-measurement retried then
recorded, a stop that cancels what runs on the cluster, an unreachable cluster said in one
sentence before anything is spent, and a trust prompt that names the cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from overnight.core import process
from overnight.core import recipe as recipes
from overnight.core.contracts import MeasureRequest
from overnight.core.runner import build, start_run
from overnight.core.store import Store
from tests.data.core.kit import alive, experiments, no_traceback, recipe

ray = pytest.importorskip("ray")

SLOW = '''
echo $$ >> "$PIDS"
case "$(cat "$1")" in *slow*) sleep "$(cat "$OVERNIGHT_RECIPE_DIR/slow")";; esac
wc -c < "$1"
'''
PROPOSALS = ["hello world\n", "hi\n", "hello there friend\n", "hey\n", "hello, hello, hello\n", "yo\n"]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for every test here (starting one takes seconds on a small machine)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def on_ray(budget: str = "", address: str | None = None) -> str:
    where = f'\naddress = "{address}"' if address else ""
    return f'{budget}\n\n[executor]\nkind = "ray"{where}\nnum_cpus = 1'


def run_and_read(folder: Path, db: Path) -> list[tuple]:
    start_run(recipes.load(folder / "recipe.toml"), Store(db))
    return [(e["seq"], e["status"], e["score"], e["reason"]) for e in experiments(db)]


def wait_for(condition, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return found


def test_a_recipe_on_ray_records_the_same_experiments_and_decisions_as_locally(cluster, tmp_path):
    here = recipe(tmp_path / "here", proposals=PROPOSALS)
    there = recipe(tmp_path / "there", proposals=PROPOSALS, budget=on_ray(), name="here")
    setup = build(recipes.load(there / "recipe.toml"), Store(tmp_path / "probe.db"))
    assert type(setup.executor).__name__ == "RayExecutor"

    local = run_and_read(here, tmp_path / "here.db")
    remote = run_and_read(there, tmp_path / "there.db")
    assert remote == local
    assert {status for _, status, _, _ in remote} == {"baseline", "keep", "discard"}


def test_parallel_measurements_on_ray_keep_every_proposal_once(cluster, tmp_path):
    folder = recipe(tmp_path / "r", proposals=PROPOSALS, budget=on_ray("parallel = 2"))
    found = run_and_read(folder, tmp_path / "db")
    assert len(found) == len(PROPOSALS) + 1
    assert all(status in ("baseline", "keep", "discard") for _, status, _, _ in found)


def slow_setup(tmp_path: Path, seconds: float, budget: str = "", with_agent: bool = False):
    """A recipe whose metric sleeps `seconds` on a candidate saying "slow" (the baseline does not)."""
    pids = tmp_path / "pids"
    folder = recipe(tmp_path / "r", proposals=[f"slow {p}" for p in PROPOSALS], budget=on_ray(budget),
                    metric=f'kind = "command"\nrun = "sh {{recipe}}/slow.sh {{file}}"\nenv = {{ PIDS = "{pids}" }}',
                    files={"slow.sh": SLOW, "slow": str(seconds)})
    return folder, build(recipes.load(folder / "recipe.toml"), Store(tmp_path / "db"), with_agent=with_agent)


def measure_in_thread(setup, seconds: float = 60.0) -> tuple[threading.Thread, dict]:
    got: dict = {}
    go = lambda: got.setdefault("outcome", setup.executor.measure("slow text\n", MeasureRequest(seconds)))  # noqa: E731
    thread = threading.Thread(target=go)
    thread.start()
    return thread, got


def kill_worker(executor, not_pid: int | None = None) -> dict:
    started = wait_for(lambda: [w for w in executor.in_flight() if w["pid"] != not_pid])[0]
    os.kill(started["pid"], signal.SIGKILL)
    return started


def test_a_worker_killed_mid_measurement_is_retried_and_the_retry_counts(cluster, tmp_path):
    process.allow()
    _, setup = slow_setup(tmp_path, 2)
    thread, got = measure_in_thread(setup)
    killed = kill_worker(setup.executor)
    thread.join(90)
    m = got["outcome"].measurement
    assert m.ok and m.value == len("slow text\n"), m.reason
    assert killed["pid"] not in [w["pid"] for w in setup.executor.in_flight()]


def test_a_worker_killed_again_on_the_retry_is_recorded_as_a_crash_naming_the_node(cluster, tmp_path):
    process.allow()
    _, setup = slow_setup(tmp_path, 5)
    thread, got = measure_in_thread(setup)
    first = kill_worker(setup.executor)
    kill_worker(setup.executor, not_pid=first["pid"])
    thread.join(90)
    m = got["outcome"].measurement
    assert m.status == "crash"
    assert m.reason.startswith(f"the Ray worker running it died (node {first['ip']}")
    assert "again on the retry" in m.reason


def test_stop_cancels_the_measurements_in_flight_on_the_cluster(cluster, tmp_path):
    _, setup = slow_setup(tmp_path, 60, "parallel = 2", with_agent=True)
    handle: dict = {}
    thread = threading.Thread(target=lambda: handle.setdefault(
        "summary", start_run(setup, on_start=lambda running: handle.setdefault("running", running))))
    thread.start()
    wait_for(lambda: "running" in handle and len(setup.executor.in_flight()) == 2)
    pids = tmp_path / "pids"
    commands = wait_for(lambda: pids.exists() and len(pids.read_text().split()) >= 3 and
                        [int(p) for p in pids.read_text().split()][1:])  # after the baseline's
    stopped = time.monotonic()
    handle["running"].stop("stopped by the test")
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - stopped < 15
    assert not setup.executor.in_flight()
    wait_for(lambda: not any(alive(pid) for pid in commands), 15)  # the metric's commands are gone too
    statuses = [e["status"] for e in experiments(tmp_path / "db")]
    assert statuses[0] == "baseline" and statuses.count("interrupted") == 2


def test_an_unreachable_cluster_is_one_sentence_before_anything_is_spent(cluster, tmp_path, cli):
    folder = recipe(tmp_path / "r", proposals=PROPOSALS, budget=on_ray(address="127.0.0.1:1"))
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0
    said = result.output.strip().splitlines()[-1]  # after the trust prompt's list, which names the cluster
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in said and "ray start --head" in said
    assert said.count(". ") == 0 and no_traceback(result.output)
    assert "sends the recipe folder and each candidate to the Ray cluster at 127.0.0.1:1" not in result.output
    assert not list(tmp_path.glob("**/*.db")) or not experiments(next(tmp_path.glob("**/*.db")))


def test_an_address_that_is_no_address_is_one_sentence(tmp_path):
    folder = recipe(tmp_path / "r", proposals=PROPOSALS, budget=on_ray(address="ray://:http"))
    with pytest.raises(Exception) as caught:
        build(recipes.load(folder / "recipe.toml"), Store(tmp_path / "db"))
    assert "is not an address a Ray cluster has" in str(caught.value)


def test_the_trust_prompt_names_a_cluster_that_is_not_this_machine(tmp_path):
    from overnight.sharing.reach import reach

    remote = recipe(tmp_path / "a", budget=on_ray(address="ray://head.lan:10001"))
    local = recipe(tmp_path / "b", budget=on_ray())
    lines = reach(recipes.load(remote / "recipe.toml")).lines()
    assert any("sends the recipe folder and each candidate to the Ray cluster at ray://head.lan:10001" in x
               for x in lines)
    assert not any("Ray cluster" in x for x in reach(recipes.load(local / "recipe.toml")).lines())


def test_a_metric_that_calls_models_is_refused_on_ray_in_one_sentence(tmp_path, monkeypatch):
    from overnight.core.errors import OvernightError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-sent")
    folder = recipe(tmp_path / "r", budget=on_ray(), metric='kind = "judge"\nmodel = "openai/gpt-4o-mini"\n'
                    'rubric = "Is it clear?"')
    with pytest.raises(OvernightError) as caught:
        build(recipes.load(folder / "recipe.toml"), Store(tmp_path / "db"), with_agent=False)
    assert "calls a language model" in caught.value.message and 'kind = "local"' in caught.value.message


def test_help_and_plugins_list_the_executors_without_importing_ray():
    code = ("import sys; from click.testing import CliRunner; from overnight.cli.main import cli; "
            "r = CliRunner().invoke(cli, ['plugins']); print(r.output); "
            "CliRunner().invoke(cli, ['--help']); print('RAY' if 'ray' in sys.modules else 'NO RAY')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "executor ray" in out and "executor local" in out
    assert out.strip().endswith("NO RAY")


def test_a_run_on_ray_killed_halfway_resumes_and_records_every_proposal_once(cluster, tmp_path):
    from tests.data.core.kit import lines_recorded, rows

    proposals = [("x" * i) + "\n" for i in range(10, 22)]
    folder = recipe(tmp_path / "r", proposals=proposals, budget=on_ray(address=cluster),
                    metric='kind = "command"\nrun = "sleep 0.4; wc -c < {file}"')
    db = tmp_path / ".overnight" / "overnight.db"
    command = [sys.executable, "-m", "overnight.cli.main", "run", str(folder), "--yes"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def recorded() -> int:
        try:
            return rows(db, "select count(*) n from experiments where seq > 0")[0]["n"]
        except Exception:  # not there yet
            return 0

    wait_for(lambda: recorded() >= 4, 120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert 0 < recorded() < len(proposals)

    done = subprocess.run([*command, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert no_traceback(done.stdout + done.stderr)
    assert sorted(lines_recorded(db, measured_only=True)) == list(range(1, len(proposals) + 1))


def test_ray_not_installed_is_one_sentence_and_a_broken_check(tmp_path, cli, monkeypatch):
    """Without the `ray` extra, a recipe on Ray says how to get it: from a run, and from `check`
    as broken (exit 2), since nothing could be measured."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is not installed
    folder = recipe(tmp_path / "r", proposals=PROPOSALS, budget=on_ray())
    for args, code in ((["run", folder, "--yes", "--dry-run"], 1), (["check", folder, "--yes"], 2)):
        result = cli(*args)
        assert result.exit_code == code and no_traceback(result.output), result.output
        assert (f"Error: {folder / 'recipe.toml'}: [executor] kind = \"ray\" needs Ray, which is not installed here: "
                "pip install 'overnight[ray]', or measure on this machine with kind = \"local\".") in result.output
