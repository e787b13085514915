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
        path = self.source()
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise OvernightError(f"The {self.noun} {path} does not exist (surface path = {self.config['path']!r}).") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise OvernightError(f"Cannot read the {self.noun} {path}: {exc}.") from None

    def read(self) -> str:
        return self.read_text()

    def materialize(self, view: str, folder: Path) -> Path:
        relative = self._relative()
        target = folder / relative
        if len(relative.parts) > 1:  # a syscall saved per experiment; the folder itself exists
            target.parent.mkdir(parents=True, exist_ok=True)
        workfolder.write(target, view.encode("utf-8"))
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
        return atomic_write(self.source(), view.encode("utf-8"), backup_dir)
