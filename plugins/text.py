"""Surface `text`: one file, optionally with a marked region that alone may change."""

from __future__ import annotations

from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.textfile import TextFileSurface


class TextSurface(TextFileSurface):
    name = "text"
    noun = "surface file"
    summary = "One text file; optionally only the lines between two marker lines may change."
    options = {
        "path": Option(str, "the file to improve, relative to the recipe", required=True),
        "region_start": Option(str, "a marker line; only lines after it may change", default=None),
        "region_end": Option(str, "a marker line; only lines before it may change", default=None),
    }

    def read(self) -> str:
        path = self.source()
        text = self.read_text()
        if self._has_region() and self._split(text) is None:
            raise OvernightError(
                f"The surface file {path} has no editable region: expected a line {self.config['region_start']!r} "
                f"followed by a line {self.config['region_end']!r}."
            )
        return text

    def rules(self) -> str:
        if self._has_region():
            return (f"Only the lines between the marker lines {self.config['region_start']!r} and "
                    f"{self.config['region_end']!r} may change; keep both markers and everything outside them as they are.")
        return "Return the whole new file."

    def problems(self, view: str, base: str) -> list[str]:
        if not self._has_region():
            return []
        old, new = self._split(base), self._split(view)
        if new is None:
            return ["the region markers are missing or out of order"]
        if old is not None and (old[0], old[2]) != (new[0], new[2]):
            return ["it changes text outside the editable region"]
        return []

    def degenerate(self, view: str) -> dict[str, str]:
        # With a marked region, `overnight check` empties, halves and pads the region, not the file.
        parts = self._split(view) if self._has_region() else None
        if parts is None:
            return {}
        before, region, after = parts
        lines = region.splitlines(keepends=True)
        half = "".join(lines[: len(lines) // 2])
        return {"empty": before + after, "first half only": before + half + after, "repeated twice": before + region + region + after}

    def _has_region(self) -> bool:
        return bool(self.config.get("region_start") or self.config.get("region_end"))

    def _split(self, text: str) -> tuple[str, str, str] | None:
        """(before, region, after), or None when the markers are not there in order."""
        lines = text.splitlines(keepends=True)
        start, end = self.config.get("region_start"), self.config.get("region_end")
        stripped = [line.rstrip("\r\n") for line in lines]
        try:
            i = stripped.index(start) if start else -1
            j = stripped.index(end, i + 1) if end else len(lines)
        except ValueError:
            return None
        return "".join(lines[: i + 1]), "".join(lines[i + 1 : j]), "".join(lines[j:])


@hookimpl
def overnight_register_surfaces(register):
    register(TextSurface)
