"""A surface whose artifact is one text file named by the recipe's `path` key.

Reading with clear errors, writing the candidate where the user's file sits
relative to the recipe, and applying atomically with a backup are the same for
every such surface; subclasses add only what makes them different.
"""

from __future__ import annotations

from pathlib import Path

from . import workfolder
from .contracts import Surface
from .errors import OvernightError
from .files import atomic_write


class TextFileSurface(Surface):
    # How errors name the file: "the prompt file", "the email template", ...
    noun = "surface file"

    def source(self) -> Path:
        try:
            return self._source
        except AttributeError:  # resolved once: following links costs a call for each part of the path
            self._source = self.path(self.config["path"])
            return self._source

    def read_text(self) -> str:
        """The file's text with its line breaks as "\n", as text mode reads it: what the agent edits
        and the diffs show. A file whose every line ends in "\r\n" is written back so (`_bytes`)."""
        path = self.source()
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise OvernightError(f"The {self.noun} {path} does not exist (surface path = {self.config['path']!r}).") from None
        except IsADirectoryError:
            raise OvernightError(f"The {self.noun} {path} is a folder; the surface path names one file "
                                 f"(surface path = {self.config['path']!r}).") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise OvernightError(f"Cannot read the {self.noun} {path}: {exc}.") from None
        self._crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def _bytes(self, view: str) -> bytes:
        """A view as the file holds it: with the file's own line breaks, so the metric measures
        and `apply` writes the bytes the person would have, not a file turned to "\n" endings."""
        if not hasattr(self, "_crlf"):
            self.read_text()
        return (view.replace("\n", "\r\n") if self._crlf else view).encode("utf-8")

    def read(self) -> str:
        return self.read_text()

    def materialize(self, view: str, folder: Path) -> Path:
        relative = self._relative()
        target = folder / relative
        if len(relative.parts) > 1:  # a syscall saved per experiment; the folder itself exists
            target.parent.mkdir(parents=True, exist_ok=True)
        workfolder.write(target, self._bytes(view))
        return target

    def _relative(self) -> Path:
        """Where the candidate goes in a work folder: the same place relative to the recipe as the
        user's file, so imports and paths still work (worked out once: paths cost on every experiment)."""
        try:
            return self._in_folder
        except AttributeError:
            source = self.source()
            self._in_folder = source.relative_to(self.recipe_dir) if source.is_relative_to(self.recipe_dir) else Path(source.name)
            return self._in_folder

    def apply(self, view: str, backup_dir: Path) -> Path | None:
        return atomic_write(self.source(), self._bytes(view), backup_dir)
