"""`overnight tui`: watch runs live, read what each experiment did, apply what you trust.

The app only reads and writes the store, so a run in another terminal is seen
(and paused, steered, stopped) the same way as one this app runs itself
(`overnight run --tui`). All I/O happens in worker threads.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import CancelledError
from functools import partial
from pathlib import Path
from typing import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message_pump import MessagePump
from textual.screen import Screen

from overnight.core.errors import OvernightError

from .dashboard import Dashboard
from .data import Data
from .messages import RunEnded, RunStarted
from .runs_screen import RunsScreen
from .toasts import Toasts


class OvernightApp(Toasts, App):
    TITLE = "overnight"
    CSS_PATH = [Path(__file__).parent / "app.tcss"]  # absolute: subclasses may live anywhere
    BINDINGS = [
        Binding("ctrl+q", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "keys", "keys", show=False),
        # Shown last in every footer (the footer's own palette key takes more room at 80 columns).
        Binding("ctrl+p", "command_palette", "menu", priority=True),
    ]

    def __init__(self, db: Path | str, setup=None, run_id: int | None = None, open_single: bool = True) -> None:
        super().__init__()
        self.data = Data(Path(db))
        self.sub_title = str(db)
        self.setup, self.resume_id = setup, run_id
        self.stop_run = None  # stops the run this app started (`run --tui`), from any thread
        self.summary = None
        self.loop_error = ""
        self.open_single = open_single and setup is None
        self.opened_once = False

    def action_keys(self) -> None:
        """Every key of the screen on top, in a dialog (not over another dialog)."""
        from textual.screen import ModalScreen

        from .keys_screen import KeysScreen

        if not isinstance(self.screen, ModalScreen):
            self.push_screen(KeysScreen(self.screen))

    def on_mount(self) -> None:
        self.push_screen(RunsScreen())
        if self.setup is not None:
            self.run_loop()

    def on_unmount(self) -> None:
        self.data.close()

    def from_thread(self, fn, *args, **kwargs) -> None:
        """Calls `fn` on the UI's thread from a worker.

        A worker may finish after the person left its screen (or the app): then there
        is nothing left to update, and that is not an error.
        """
        owner = getattr(fn, "__self__", None)

        def call():
            if isinstance(owner, MessagePump) and owner is not self and not self.showing(owner):
                return None
            return fn(*args, **kwargs)

        try:
            self.call_from_thread(call)
        except (RuntimeError, CancelledError):
            pass  # the app closed while the worker was busy

    # -- navigation -------------------------------------------------------------

    def opens_single(self, runs: list[dict]) -> bool:
        """With one run in the store, its dashboard is what anyone wants to see first."""
        return self.open_single and not self.opened_once and len(runs) == 1

    def runs_shown(self, runs: list[dict], first: tuple | None = None) -> None:
        if self.opens_single(runs):
            self.open_run(runs[0]["id"], first)
        self.opened_once = True

    def open_run(self, run_id: int, first: tuple | None = None) -> None:
        self.push_screen(Dashboard(run_id, first))

    def open_experiment(self, run_id: int, exp_id: int) -> None:
        from .detail import Detail  # imported when first needed: the first paint does not wait for it

        self.push_screen(Detail(run_id, exp_id))

    def open_compare(self, run_id: int, first: int, second: int) -> None:
        from .compare import Compare

        self.push_screen(Compare(run_id, first, second))

    def showing(self, node: MessagePump) -> bool:
        """True while `node` is on a screen of the stack (a popped screen may take a moment to go)."""
        try:
            screen = node if isinstance(node, Screen) else node.screen
            return node.is_attached and screen in self.screen_stack
        except Exception:  # a node half taken down has no screen any more
            return False

    def background(self, fn, *args) -> None:
        """Runs `fn` in a worker of the app's own: it goes on when the person leaves the screen
        that started it (an apply or a re-measurement is not abandoned half way)."""
        self.run_worker(partial(fn, *args), thread=True, group="actions")

    # -- run controls (through the store, so they reach any process) ------------

    @work(thread=True, group="control")
    def control(self, run_id: int, fn, *args) -> None:
        """`fn(store, run, *args)`: an operation of overnight.ops.control; its sentence is shown."""
        try:
            message = self.data.write(lambda store: fn(store, store.run(run_id), *args))
        except (OvernightError, sqlite3.Error) as exc:
            self.from_thread(self.notify, str(exc), severity="error", timeout=8)
            return
        self.from_thread(self.notify, message)

    # -- the command palette lists what the current screen's keys do -------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or not active.enabled:
                continue
            seen.add(binding.action)
            yield SystemCommand(binding.description.capitalize(), f"key: {self.get_key_display(binding)}",
                                partial(self.call_later, active.node.run_action, binding.action))

    # -- overnight run --tui ------------------------------------------------------

    @work(thread=True, group="loop", exit_on_error=False)
    def run_loop(self) -> None:
        from overnight.core.events import RUN_STARTED
        from overnight.ops.runs import start_run

        self.setup.events.subscribe(
            lambda event: event.kind == RUN_STARTED and self.from_thread(self.post_message, RunStarted(event.run_id)))

        def attach(stop) -> None:
            self.stop_run = stop

        try:
            summary = start_run(self.setup, self.resume_id, attach=attach)
        except OvernightError as exc:
            self.from_thread(self.post_message, RunEnded(error=exc.message))
            return
        except BaseException as exc:  # noqa: BLE001  a bug: shown, and the UI stays usable
            self.from_thread(self.post_message, RunEnded(error=f"the run failed: {type(exc).__name__}: {exc}"))
            return
        self.from_thread(self.post_message, RunEnded(summary=summary))

    def on_run_started(self, message: RunStarted) -> None:
        self.open_run(message.run_id)

    def on_run_ended(self, message: RunEnded) -> None:
        self.summary, self.loop_error = message.summary, message.error
        self.stop_run = None
        if message.error:
            self.notify(message.error, title="Run failed", severity="error", timeout=30)
        else:
            s = message.summary
            self.notify(f"Run {s.run_id} {s.status}: {s.stop_reason}. Kept {s.kept} of {s.experiments}.",
                        title="Run ended", timeout=30)
        if self.quitting:
            self.exit(self.summary)

    quitting = False

    async def action_quit(self) -> None:
        """Under `run --tui`, quitting stops the run cleanly first (it can be resumed)."""
        if self.stop_run is not None:
            self.quitting = True
            self.notify("Stopping the run; what is in flight is recorded as interrupted.", timeout=30)
            self.stop_run("interrupted by quitting the TUI")
            return
        self.exit(self.summary)


def run_with_ui(setup, run_id: int | None, db: Path):
    """Runs the loop in a worker with the UI attached; returns the run's summary (or None)."""
    app = OvernightApp(db, setup=setup, run_id=run_id)
    app.run()
    if app.loop_error:
        raise OvernightError(app.loop_error)
    return app.summary
