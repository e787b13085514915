"""The operations both front ends call (overnight.ops), on real runs, stores and recipe folders.

The CLI and TUI tests drive them through their front ends; these tell the
stories the front ends do not: references as a person types them, a run started
off the main thread and stopped from another, re-measuring without the agent's
key, and the trust record consulted before anything of a recipe runs again.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.store import Store
from tests.conftest import write
from tests.tui_support import copy_store, recipe, run_once, run_recipe, trust

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return run_once(tmp_path_factory.mktemp("made"))


@pytest.fixture
def store(made, workspace):
    s = Store(copy_store(made[1], workspace / "store.db"))
    yield s
    s.close()


# -- finding what a person names -----------------------------------------------------------


def test_runs_and_experiments_are_found_as_a_person_writes_them(store):
    from overnight.ops.find import find_experiment, find_run, view_of

    assert find_run(store, None)["id"] == find_run(store, "latest")["id"] == find_run(store, "greeting")["id"] == 1
    for ref in ("3", "1:3", "greeting:3"):
        run, exp = find_experiment(store, ref)
        assert (run["id"], exp["seq"], exp["rationale"]) == (1, 3, "a shorter question")
    assert view_of(store, exp) == "Hello there friend, how are you?\n"


@pytest.mark.parametrize("ref, message", [
    ("three", "'three' is not an experiment: write its number (e.g. 12) or RUN:NUMBER (e.g. 3:12)."),
    ("1:99", "Run 1 has no experiment 99 (see `overnight log 1`)."),
    ("7:1", "There is no run '7' in"),
    ("pricing:1", "There is no run 'pricing' in"),
])
def test_a_reference_to_nothing_is_one_sentence(store, ref, message):
    from overnight.ops.find import find_experiment

    with pytest.raises(OvernightError) as caught:
        find_experiment(store, ref)
    assert message in caught.value.message and "\n" not in caught.value.message


# -- the store's reads for the front ends ----------------------------------------------------


def test_the_light_reads_leave_the_heavy_columns_in_the_store(store):
    count, max_id, updated = store.runs_stamp()
    assert (count, max_id) == (1, 1) and updated > 0
    assert "recipe_text" not in store.runs_overview()[0]
    last = store.max_experiment_id(1)
    rows = store.experiments_after(1, 0)
    assert [r["seq"] for r in rows] == list(range(7)) and rows[-1]["id"] == last
    assert "diff" not in rows[0] and "trace" not in rows[0]
    assert store.experiments_after(1, last) == []
    assert [r["seq"] for r in store.experiments_light([rows[3]["id"], rows[0]["id"]])] == [0, 3]
    assert store.experiments_light([]) == []
    store.add_remeasure(run_id=1, experiment_id=rows[3]["id"], recipe="greeting", samples=[33.0, 34.0])
    store.add_remeasure(run_id=1, experiment_id=rows[3]["id"], recipe="greeting", samples=[35.0])
    assert store.remeasures(rows[3]["id"]) == [33.0, 34.0, 35.0]
    assert [r["action"] for r in store.experiment_reviews(rows[3]["id"])] == ["remeasured", "remeasured"]


# -- starting a run ------------------------------------------------------------------------------


class Heard:
    """An installed plugin's `overnight_event`: what it heard, and the pool the run's threads came from."""

    def __init__(self):
        self.kinds: list[str] = []
        self.pool: int | None = None

    @hookimpl
    def overnight_event(self, event):
        import asyncio

        self.kinds.append(event.kind)
        if self.pool is None:
            self.pool = asyncio.get_running_loop()._default_executor._max_workers


@pytest.fixture
def heard():
    from overnight.core.plugins import for_run

    plugin = Heard()
    pm = for_run().pm  # the plugins a run hears
    pm.register(plugin, name="heard-in-test")
    yield plugin
    pm.unregister(name="heard-in-test")


def test_a_run_started_off_the_main_thread_is_heard_by_plugins_and_stops_when_told(workspace, heard):
    """As `overnight run --tui` starts one: the same pool as `overnight run`, the event hook wired."""
    from overnight.core import recipe as recipes
    from overnight.core.runner import build, pool_size
    from overnight.ops.runs import start_run

    marks = [{"replace": ["?", "?" * i], "rationale": f"more question marks {i}"} for i in range(2, 30)]
    folder = recipe(workspace / "greeting", marks, slow=0.3, experiments=40)
    with (folder / "recipe.toml").open("a") as toml:
        toml.write("parallel = 3\n")  # the [budget] section is the last
    store = Store(workspace / "store.db")
    setup = build(recipes.load(folder), store)
    stops, ended = [], {}
    worker = threading.Thread(target=lambda: ended.update(summary=start_run(setup, attach=stops.append)))
    worker.start()
    try:
        from tests.test_control import wait_for

        wait_for(lambda: stops and heard.kinds.count("experiment_finished") >= 2, what="a few experiments")
        stops[0]("interrupted by quitting the TUI")
    finally:
        worker.join(30)
    assert not worker.is_alive()
    summary = ended["summary"]
    assert (summary.status, summary.stop_reason) == ("stopped", "interrupted by quitting the TUI")
    assert heard.kinds[0] == "run_started" and heard.kinds[-1] == "run_finished"
    assert heard.pool == pool_size(setup.budget) == 10
    stops[0]("too late")  # the run is over: nothing to stop, and no error
    store.close()


def test_a_stop_that_ends_the_run_before_it_is_done_raises_nothing():
    """A stop kills the command in flight at once; when that was the run's last step, the run's
    event loop may close before the stop's second half reaches it (quitting the TUI then crashed it)."""
    import asyncio

    from overnight.core.runner import Running

    aio = asyncio.new_event_loop()
    told = []

    class EndsWhenInterrupted:
        def interrupt(self, reason):
            told.append(reason)
            aio.close()  # as the run's thread does once its last command is killed

        def stop(self, reason):
            raise AssertionError("a closed loop runs nothing")

    Running(EndsWhenInterrupted(), aio).stop("interrupted by quitting the TUI")
    assert told == ["interrupted by quitting the TUI"]


def test_overnight_run_starts_through_the_same_operation(workspace, cli, heard):
    folder = recipe(workspace / "greeting")
    run_recipe(cli, folder, workspace / "store.db")
    assert heard.kinds[0] == "run_started" and heard.kinds[-1] == "run_finished"
    assert heard.kinds.count("experiment_finished") == 6
    assert heard.pool == 6  # parallel 1: 1 * 2 + 4


# -- re-measuring --------------------------------------------------------------------------------


def test_remeasure_records_the_scores_and_needs_no_agent_key(workspace, cli, monkeypatch):
    """No proposal is asked for, so a missing model key is no reason to refuse."""
    from overnight.ops.remeasure import remeasure

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef")
    folder = write(workspace / "note", {
        "note.txt": "Thanks for writing.\n",
        "score.py": "def score(path):\n    return len(open(path).read())\n",
        "recipe.toml": """
            [recipe]
            name = "note"

            [surface]
            kind = "text"
            path = "note.txt"

            [metric]
            kind = "python"
            file = "score.py"
            goal = "minimize"

            [agent]
            kind = "llm"
            model = "anthropic/claude-haiku-4-5"

            [budget]
            experiments = 0
            usd = 1
        """,
    })
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    trust(folder)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    baseline = Store(db).experiment_at(1, 0)
    seen = []
    samples, failures = remeasure(db, 1, baseline["id"], 2, progress=seen.append)
    assert (samples, failures, seen) == ([20.0, 20.0], [], [1, 2])
    assert Store(db).remeasures(baseline["id"]) == [20.0, 20.0]


def test_remeasure_refuses_a_recipe_changed_after_it_was_trusted(workspace, cli):
    from overnight.ops.remeasure import remeasure

    folder = recipe(workspace / "greeting")
    db = workspace / "store.db"
    run_recipe(cli, folder, db)
    trust(folder)
    (folder / "score.py").write_text((folder / "score.py").read_text() + "\nopen('/tmp/anything', 'w')\n")
    exp = Store(db).experiment_at(1, 3)
    with pytest.raises(OvernightError) as caught:
        remeasure(db, 1, exp["id"], 2)
    assert caught.value.message == (
        f"Recipe 'greeting' runs code and is not trusted as it is now (new, or changed since you trusted it), "
        f"so nothing was run: review and trust it with `overnight recipes trust {folder}`.")
    assert Store(db).remeasures(exp["id"]) == []


def test_apply_preview_for_a_front_end_that_cannot_ask_refuses_an_untrusted_recipe(workspace, cli):
    from overnight.ops.apply import preview

    folder = recipe(workspace / "greeting")
    db = workspace / "store.db"
    run_recipe(cli, folder, db)  # with --yes: trusted for that run only
    store = Store(db)
    run, exp = store.run(1), store.experiment_at(1, 3)
    with pytest.raises(OvernightError, match="is not trusted as it is now"):
        preview(store, run, exp, trusted_only=True)
    surface, diff = preview(store, run, exp)  # `overnight apply --dry-run` as before
    assert "+Hello there friend, how are you?" in diff
    trust(folder)
    assert preview(store, run, exp, trusted_only=True)[1] == diff
    assert store.reviews(1) == []
    store.close()


# -- the front ends do not reach around each other ------------------------------------------------


def _imports(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in sorted((ROOT / folder).glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names.add(("." * node.level) + (node.module or ""))
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        found[path.name] = names
    return found


def test_the_tui_imports_no_cli_and_the_cli_starts_the_tui_only():
    for name, names in _imports("tui").items():
        assert not any(n.startswith(("overnight.cli", "..cli")) for n in names), name
    for name, names in _imports("ops").items():
        assert not any(n.startswith(("overnight.tui", "..tui")) for n in names), name
    starts = {name for name, names in _imports("cli").items() if any(n.startswith("overnight.tui") for n in names)}
    assert starts <= {"tui.py", "run.py"}  # `overnight tui` and `overnight run --tui`
