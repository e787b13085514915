"""Surface `prompt`: a prompt template with named inputs, filled per example by a metric.

Two formats. `jinja` (the default): a Jinja2 template, `{{ ticket }}`, with loops
and conditions if wanted. `text`: plain text where `{ticket}` is replaced by the
input and every other brace is left alone, for prompts full of JSON examples.
A proposal is measurable only if it still parses, still uses every declared
input and reads no variable that is not one.
"""

from __future__ import annotations

from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.options import Option
from overnight.core.textfile import TextFileSurface

from . import templating


class PromptSurface(TextFileSurface):
    name = "prompt"
    noun = "prompt file"
    summary = "A prompt template (Jinja2 or plain text) with named inputs, filled per example."
    options = {
        "path": Option(str, "the template file, relative to the recipe", required=True),
        "inputs": Option(list, "the names the template must keep, e.g. [\"ticket\"] (default: those the file uses)", default=None),
        "format": Option(str, "jinja ({{ name }}) or text ({name})", default="jinja", choices=templating.FORMATS),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        inputs = self.config["inputs"]
        if inputs is not None and not all(isinstance(i, str) and i.isidentifier() for i in inputs):
            raise OvernightError(f"The prompt's inputs must be a list of names such as [\"ticket\"], not {inputs!r}.")
        self.inputs: list[str] | None = list(inputs) if inputs is not None else None

    @property
    def template_format(self) -> str:
        """Read by metrics that render the materialized template themselves."""
        return self.config["format"]

    def read(self) -> str:
        path = self.source()
        text = self.read_text()
        fmt = self.template_format
        if fmt == "jinja":
            problem = templating.parse_problem(text)
            if problem:
                raise OvernightError(f"The prompt file {path} is not a valid Jinja2 template: {problem}.")
        if self.inputs is None:
            self.inputs = sorted(templating.variables(text, fmt))
        missing = templating.missing_inputs(text, self.inputs, fmt)
        if missing:
            names = ", ".join(templating.placeholder(n, fmt) for n in missing)
            raise OvernightError(f"The prompt file {path} does not use the declared input {names} (surface inputs).")
        if fmt == "jinja":
            extra = sorted(templating.variables(text) - set(self.inputs))
            if extra:
                raise OvernightError(
                    f"The prompt file {path} uses {', '.join(templating.placeholder(n) for n in extra)}, "
                    f"which is not a declared input; add it to the surface's inputs ({self._inputs_text()}).")
        return text

    def rules(self) -> str:
        fmt = self.template_format
        names = self._inputs_text()
        kind = "a Jinja2 template" if fmt == "jinja" else "plain text where {name} placeholders are filled"
        rules = [
            f"This is a prompt template ({kind}); a task model receives its rendering for each example.",
            f"Keep every input placeholder: {names}; each is filled with the example's own text.",
        ]
        if fmt == "jinja":
            rules.append("Use no other variables, and keep the template valid Jinja2.")
        rules.append("Return the whole new template.")
        return " ".join(rules)

    def problems(self, view: str, base: str) -> list[str]:
        fmt = self.template_format
        if self.inputs is None:
            self.read()  # the inputs default to those the person's file uses
        inputs = self.inputs or []
        if fmt == "jinja":
            problem = templating.parse_problem(view)
            if problem:
                return [f"the template no longer parses: {problem}"]
        out = []
        missing = templating.missing_inputs(view, inputs, fmt)
        if missing:
            names = ", ".join(templating.placeholder(n, fmt) for n in missing)
            out.append(f"it drops the declared input{'s' if len(missing) > 1 else ''} {names}")
        if fmt == "jinja":
            extra = sorted(templating.variables(view) - set(inputs))
            if extra:
                names = ", ".join(templating.placeholder(n) for n in extra)
                out.append(f"it uses {names}, which {'is' if len(extra) == 1 else 'are'} not a declared input ({self._inputs_text()})")
        return out


    def degenerate(self, view: str) -> dict[str, str]:
        # The inputs alone, with no instruction: a metric that scores this well does not need the prompt.
        fmt = self.template_format
        return {"inputs only": "\n\n".join(templating.placeholder(n, fmt) for n in self.inputs or []) + "\n"}

    def _inputs_text(self) -> str:
        return ", ".join(templating.placeholder(n, self.template_format) for n in self.inputs or []) or "none"


@hookimpl
def overnight_register_surfaces(register):
    register(PromptSurface)
