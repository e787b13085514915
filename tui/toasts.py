"""Notifications that never cover a dialog, their paths broken at slashes rather than mid-name."""

from __future__ import annotations

from dataclasses import replace
from time import time
from uuid import uuid4

from textual.app import ScreenStackError
from textual.css.query import NoMatches
from textual.notifications import Notifications
from textual.screen import ModalScreen
from textual.widgets._toast import ToastRack

from .breaks import wrapped

TOAST_WIDTH = 60  # Textual's: at most 60 cells and half the screen, less border and padding


class Toasts:
    """Mixed into the app before `App`: which notifications its toast rack shows, and how."""

    held_notifications: tuple = ()  # waiting for the dialog on top to close

    def _refresh_notifications(self) -> None:
        """A toast never covers a dialog: what is said while one is open waits until it closes.

        A dialog asks for a decision; a toast over it hides the question (or the diff
        an apply would write). Waiting messages are counted on the dialog's border and
        shown, for the time they had left, once it closes. A toast shows its message as
        plain text (a `[metric]` in it is not markup) broken at spaces and slashes, so a
        path reads whole; the notification itself keeps the message as it was said.
        """
        try:
            screen = self.screen
            rack = screen.get_child_by_type(ToastRack)
        except (ScreenStackError, NoMatches):  # no screen yet, or one without a rack (yet)
            return super()._refresh_notifications()
        shown = Notifications()
        if isinstance(screen, ModalScreen):
            # What was on screen keeps the time it had left (a few seconds at least).
            self.held_notifications += tuple(replace(n, timeout=max(n.time_left, 3.0)) for n in self._notifications)
            self._notifications.clear()
            for below in self.screen_stack[:-1]:  # nor does one show dimmed beside it
                for other in below.query_children(ToastRack).results():
                    self.call_later(other.show, Notifications())
            count = len(self.held_notifications)
            for dialog in screen.query(".dialog").results():
                dialog.border_subtitle = (f"{count} message{'s' if count > 1 else ''} "
                                          f"wait{'s' if count == 1 else ''} until this closes") if count else ""
        else:
            for n in self.held_notifications:  # a fresh identity: its toast is made again, with its own timer
                self._notifications.add(replace(n, raised_at=time(), identity=str(uuid4())))
            self.held_notifications = ()
            width = min(TOAST_WIDTH, self.size.width // 2) - 4
            for n in self._notifications:  # the same identity: the toast's timer forgets the notification itself
                shown.add(replace(n, message=wrapped(n.message, width), markup=False))
        self.call_later(rack.show, shown)
