"""The base of the app's screens: their workers keep a hold on the app.

A worker thread finds the app through the screen's parents; once the person has
left the screen, it has none, and `self.app` fails. So a screen notes its app
when it is made, and its workers use `self.owner`.
"""

from __future__ import annotations

from textual.screen import Screen


class AppScreen(Screen):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.owner = self.app  # made on the UI's thread, where the app is known
