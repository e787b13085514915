"""The contracts between the loop and its plugins, in one place.

A plugin implements `Surface` (or `ParametricSurface`), `Metric` or `Agent`; the
loop only ever talks to these types. Each plugin class carries its `name`, a
one-line `summary` and an `options` schema, which the recipe section is checked
against before it is built. The methods an author must write are abstract: a
class that leaves one out is refused when its plugin registers it, so the mistake
shows in `overnight plugins` rather than in the middle of a run. Plugin authors
import all of this from `overnight.api`.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from .linediff import alike, line_diff  # noqa: F401  (alike: imported from here too)
from .options import Schema

Goal = Literal["maximize", "minimize"]

# Every status an experiment can end with; `overnight log` and the store use these words.
STATUSES = (
    "baseline",
    "keep",
    "discard",
    "crash",
    "timeout",
    "invalid",
    "duplicate",
    "guard_failed",
    "interrupted",
)
FAILURES = ("crash", "timeout", "invalid")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Candidate:
    """An immutable view and its digest; identical views are measured once per run."""

    view: str
    digest: str

    @classmethod
    def of(cls, view: str) -> "Candidate":
        return cls(view, digest(view))


@dataclass(frozen=True)
class Parameter:
    """A typed knob of a surface, for agents that search without an LLM."""

    name: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    integer: bool = False
    log: bool = False
    choices: tuple | None = None


@dataclass
class ExampleResult:
    """How a metric did on one example of a dataset: the agent reads these of the train split only."""

    id: str
    input: str = ""
    output: str = ""
    expected: str = ""
    score: float = 0.0
    feedback: str = ""
    split: str = "train"


@dataclass
class LLMCall:
    """One call to a model, as the store keeps it (no secrets: messages and reply only)."""

    role: str  # agent, task or judge
    model: str
    messages: list[dict]
    response: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    cached: bool = False
    error: str = ""
    # sha256 of (model, messages, parameters): the store finds a cached reply by it.
    cache_key: str = ""


@dataclass
class Measurement:
    """What a metric saw. `status` is "ok", "crash" or "timeout"; only "ok" carries a value."""

    value: float | None
    status: str = "ok"
    reason: str = ""
    examples: list[ExampleResult] = field(default_factory=list)
    components: dict[str, float] = field(default_factory=dict)
    trace: str = ""
    cost_usd: float = 0.0
    tokens: int = 0
    seconds: float = 0.0
    llm_calls: list[LLMCall] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.value is not None

    @classmethod
    def crash(cls, reason: str, trace: str = "", **kw) -> "Measurement":
        return cls(None, status="crash", reason=reason, trace=trace, **kw)

    @classmethod
    def timeout(cls, limit: float, trace: str = "", **kw) -> "Measurement":
        # `limit` is the time limit it broke; `seconds=` (in kw) is how long it actually ran.
        return cls(None, status="timeout", reason=f"took longer than {limit:g} s", trace=trace, **kw)


@dataclass
class Proposal:
    """An agent's answer: a whole new view, or edits of the current best view.

    Set one of `view` and `edits`. When both are set, `view` is measured and `edits` are
    ignored. `edits` are (old, new) pairs, each replacing the first `old` in the current
    best view, in order; an `old` that is not there makes the experiment invalid.
    `llm_calls`: every `reply.call` of the gateway calls made for this proposal (failed
    ones from `LLMError.call`), so the log shows them; their spend is counted either way.
    """

    view: str | None = None
    edits: list[tuple[str, str]] = field(default_factory=list)
    rationale: str = ""
    cost_usd: float = 0.0
    tokens: int = 0
    trace: str = ""
    # Set when the agent could not produce a usable proposal: recorded as `invalid`.
    error: str = ""
    # Agent-specific state stored with the experiment (for example the line it came from),
    # handed back to the agent on --resume.
    meta: dict[str, Any] = field(default_factory=dict)
    llm_calls: list[LLMCall] = field(default_factory=list)
    # The experiments (by seq) it was made from; empty: the current best. Two or more: a merge.
    parents: list[int] = field(default_factory=list)
    # A train minibatch to screen it on first: example id -> its parent's score there. The loop
    # measures it on these examples, and on all of them only when it does not lose to the parent.
    screen_on: dict[str, float] = field(default_factory=dict)


@dataclass
class Attempt:
    """One past experiment as an agent sees it."""

    seq: int
    status: str
    reason: str
    rationale: str
    score: float | None
    delta: float | None
    view: str | None = None
    failing: list[ExampleResult] = field(default_factory=list)
    trace: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    # Every train example's score, by example id, when the metric has examples; empty when the
    # loop does not say (then `failing` is all an agent knows).
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Context:
    """Everything an agent may read before proposing. Holdout results are never in it."""

    best_view: str
    best_score: float | None
    baseline_score: float | None
    goal: Goal
    rules: str
    metric: str
    parameters: list[Parameter]
    history: list[Attempt]  # recent experiments, newest last, with traces
    ledger: list[Attempt]  # every rejected idea of this run, so none is paid for twice
    failing: list[ExampleResult]  # the best candidate's failing train examples
    notes: list[str]  # human review notes and steering lines
    budget_left: dict[str, float]
    seq: int


class Plugin(abc.ABC):
    """Common to every plugin class: who it is and which recipe keys it takes.

    The run builds one instance per recipe section, `Plugin(options, recipe_dir)`, with
    `options` already checked against the class's `options` schema (defaults filled in).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[Schema] = {}
    # True when the plugin runs the recipe's own commands or code: people must trust it first.
    runs_code: ClassVar[bool] = False
    # True when the plugin calls a language model. The run then sets `self.llm` before
    # `prepare`: its `overnight.core.llm.Gateway`, the one door to models (budget, cache,
    # concurrency, retries and the call log). It is the only way a plugin reaches a model;
    # `None` when the plugin was built outside a run.
    uses_llm: ClassVar[bool] = False
    # True when `measure` (a metric) or `propose` (an agent) is in-process work that never waits
    # (no command, no model, no network) and returns well within a second: the loop then calls it
    # without a worker thread. Such work holds the interpreter lock throughout, so a thread would
    # let nothing else run meanwhile and only add its hand-off (up to a millisecond of CPU on a
    # busy machine). A stop waits for such a call to return, and no time limit can interrupt it.
    instant: ClassVar[bool] = False
    # True when `measure` (a metric) waits only on the commands it runs through
    # `overnight.core.process.run`: their time limit bounds it, and a stop kills them at once.
    # With one experiment in flight, the loop then measures in its own thread, which has nothing
    # else to do meanwhile: two thread hand-offs fewer per experiment.
    waits_on_commands: ClassVar[bool] = False
    llm: Any = None

    def __init__(self, options: dict[str, Any], recipe_dir: Path):
        self.config = options
        self.recipe_dir = recipe_dir

    def path(self, value: str) -> Path:
        """A path from the recipe, relative to the recipe's folder (`~` is the home folder), resolved
        as `paths.inside` checks it: what a plugin reads is what was checked."""
        from .paths import named

        return named(self.recipe_dir, value)

    def describe_code(self) -> list[str]:
        """Exactly what this plugin will run, for the trust prompt."""
        return []


class Surface(Plugin):
    """The one thing that may change, seen through a text view.

    Every method may be called from any thread, and with `parallel` above one from
    several at once (candidates are materialized in the measuring threads): keep no
    state that changes after construction, or guard it with a lock.
    """

    @abc.abstractmethod
    def source(self) -> Path:
        """The user's artifact on disk (apply writes it, nothing else does)."""

    @abc.abstractmethod
    def read(self) -> str:
        """The current text view of the user's artifact: what agents edit, and the baseline.

        Reads `source()` and writes nothing. Called when the run is built, for the baseline
        and by agents that start from the file, from any thread and with `parallel` above
        one while other experiments are in flight: it must be thread-safe. No time limit is
        enforced, but it should take well under a second. Raise `OvernightError` with a
        sentence naming the file when it is missing or unreadable. `materialize(read(),
        folder)` must reproduce the artifact.
        """

    def rules(self) -> str:
        """What an agent must respect when it writes a view (shown in its prompt)."""
        return "Return the whole new text."

    def problems(self, view: str, base: str) -> list[str]:
        """Why a proposed view cannot be measured; empty when it can."""
        return []

    @abc.abstractmethod
    def materialize(self, view: str, folder: Path) -> Path:
        """Writes the view into a work folder; returns the path the metric should read.

        `folder` is the experiment's own work folder (a copy of the recipe folder when the
        metric `reads = "folder"`, else empty), removed after the measurement. Write the
        artifact at `folder / source().name` (plus any files beside it that it needs) and
        return that path; write nothing outside `folder`, never the user's artifact. Called
        in the measuring thread (several at once with `parallel` above one), within the
        experiment's time limit (`[budget] per_experiment_seconds`)."""

    def diff(self, old: str, new: str) -> str:
        """A unified diff of the lines (see `line_diff`); a surface whose view is not lines says
        its change its own way (a spreadsheet's cells, say)."""
        return line_diff(old, new, self.source().name)

    @abc.abstractmethod
    def apply(self, view: str, backup_dir: Path) -> Path | None:
        """Writes the view to the user's artifact atomically; returns the backup of the old one.

        The only method that writes the user's files, called only by an explicit apply."""

    def fingerprint(self) -> str:
        """A digest of the artifact on disk, to notice it changed since the run began."""
        return hashlib.sha256(self.source().read_bytes()).hexdigest()

    def parameters(self) -> list[Parameter]:
        """The typed knobs of the view; none for a free-text surface (see `ParametricSurface`)."""
        return []

    def degenerate(self, view: str) -> dict[str, str]:
        """Views that should score badly; a metric that likes them is gameable."""
        return {}


class ParametricSurface(Surface):
    """A surface whose view holds typed parameters (cells, config keys), for agents that
    search without a language model. Same threading rules as `Surface`."""

    @abc.abstractmethod
    def parameters(self) -> list[Parameter]:
        """The knobs, with their ranges or choices; the same list for every call."""

    @abc.abstractmethod
    def view_from(self, values: dict[str, Any], base: str) -> str:
        """`base` with these parameter values (names from `parameters()`; the others kept).

        Raise `OvernightError` when a value is out of its range."""

    @abc.abstractmethod
    def values_of(self, view: str) -> dict[str, Any]:
        """The parameter values a view holds, by parameter name."""


@dataclass
class MeasureRequest:
    """How one measurement should run."""

    seconds: float  # the per-experiment time limit
    split: str = "train"  # "train" or "holdout", for metrics with examples
    cache: bool = True  # False for re-measurements that estimate noise
    view: str = ""
    # The current best and its score, for metrics that compare against it (a pairwise judge);
    # empty when the measurement has no best to compare with (the baseline, a confirmation).
    best_view: str = ""
    best_score: float | None = None
    # For metrics with examples: measure only these example ids of the split (a screening
    # minibatch); None measures them all.
    examples: list[str] | None = None


class Metric(Plugin):
    """Measures a materialized candidate. Never decides keep or discard."""

    goal: Goal = "maximize"
    deterministic: ClassVar[bool] = True
    has_examples: ClassVar[bool] = False
    # What the metric reads, so a measurement writes no more than it needs:
    #   "folder": the candidate among a copy of the recipe's files (a script, data) - the safe default;
    #   "file":   the materialized candidate alone (what `materialize` wrote: the artifact's own
    #             format, a JSON file's escapes included);
    #   "view":   only `request.view`, the text agents edit (a JSON string unescaped, say); nothing
    #             is written, and `artifact` and `folder` name paths that do not exist.
    # Read the file when the artifact's format matters, the view when its text does.
    reads: ClassVar[str] = "folder"

    def __init__(self, options: dict[str, Any], recipe_dir: Path):
        # `goal` is a key every metric section shares; the plugin's own default otherwise.
        self.goal = options.pop("goal", None) or type(self).goal
        super().__init__(options, recipe_dir)

    def prepare(self, surface: Surface) -> None:
        """Called once before a run: compile, load, check. Raise OvernightError for user mistakes."""

    def describe(self) -> str:
        return f"{self.name} ({self.goal})"

    @abc.abstractmethod
    def measure(self, artifact: Path, folder: Path, request: MeasureRequest) -> Measurement:
        """Measures one candidate and returns what it saw; never decides keep or discard.

        Reads `artifact` (the materialized candidate) and the files of `folder` (a copy of
        the recipe's folder), as far as `reads` allows, and `request`. Writes only inside
        `folder`, which is removed afterwards; never the user's files. Must return within
        `request.seconds`: stop the work and return `Measurement.timeout(request.seconds)`
        (kill any process it started); the run stops waiting 5 s later and records a
        timeout. A candidate that fails is `Measurement.crash(reason)`; an exception is
        recorded as a crash too (with its trace), except the gateway's `BudgetExceeded`,
        which stops the run. Runs in a worker thread, and with `parallel` above one several
        calls run at once on this one instance: keep per-candidate state local, or guard
        shared state with a lock.

        The time limit is the metric's to keep: the run cannot stop a thread. A metric that
        calls models passes `deadline=time.monotonic() + request.seconds` to each
        `self.llm.complete`, which then gives up at that moment and tries nothing after it;
        it puts each `reply.call` in `Measurement.llm_calls`.
        """

    def screen(self, view: str) -> str | None:
        """Why a candidate must not even be measured (it copies the answers, say); None when it may."""
        return None

    def degenerate(self, view: str) -> dict[str, str]:
        """Views only this metric knows should score badly (`overnight check` measures them)."""
        return {}


class Agent(Plugin):
    """Proposes changes. Returns None when it has nothing more to propose."""

    # Why, in a few words, once `propose` has returned None (the run's stop reason), such as
    # "every value was measured"; empty: "the agent has no more proposals".
    exhausted: str = ""

    def prepare(self, surface: Surface) -> None:
        """Called once before a run; raise OvernightError when it cannot work on this surface."""

    def start(self, surface: Surface, history: list[Attempt]) -> None:
        """Called once before proposing, with what earlier sessions of this run recorded."""

    @abc.abstractmethod
    def propose(self, context: Context) -> Proposal | None:
        """The next change to try, built from `context`; None when there is nothing more.

        Reads only `context` (and its own options and files): holdout results never reach
        it. Writes nothing; what it wants back on --resume goes in `Proposal.meta`. Runs in
        a worker thread, and with `parallel` above one several calls run at once: guard
        shared state with a lock. No time limit is enforced, but a stop waits for the call
        to return, so keep each one to a few minutes (the gateway's calls time out on their
        own). `Proposal(error=...)` records the experiment as invalid; an exception does
        too, except the gateway's `BudgetExceeded`, which stops the run cleanly, and any
        other `OvernightError`, which fails the run with its sentence.

        An agent that calls a model declares `uses_llm = True` and calls
        `self.llm.complete(role="agent", model=..., messages=[...])` (core/llm.py): it returns
        a `Reply` (`text`, `finish_reason`, `call`) or raises `ModelUnavailable` (the server
        failed; `exc.call` is the failed call), `BudgetExceeded` or `ModelConfigError`. Copy
        each `reply.call` into `Proposal.llm_calls` and add its `cost_usd` and tokens to the
        proposal's, or the log will not show the call (the spend caps count it regardless).
        """

    def observe(self, attempt: Attempt) -> None:
        """Told the outcome of each of its proposals."""


# -- Where a measurement runs ----------------------------------------------------------------

from typing import Protocol  # noqa: E402  (this block stands on its own at the end of the module)


@dataclass
class Outcome:
    """One measurement of a view and, when guards were asked for, the first guard it fails."""

    measurement: Measurement
    guard_problem: str | None = None
    guard_values: dict = field(default_factory=dict)


class Executor(Protocol):
    """Where a measurement runs: the only way the loop, `check`, `explain`, the dry run and
    re-measure reach a metric (through `core.measure`), so a cluster executor plugs in here.

    `measure` materializes `view` in a fresh work folder of its own, measures it under
    `request` (its time limit, split, cache and model gateway) and returns the Outcome; with
    `guards`, the recipe's guards are measured too. A crash or a timeout of the metric is an
    Outcome saying so, never an exception; only `core.llm.BudgetExceeded` (a cap reached: not
    the candidate's fault) is raised. It knows nothing of runs, bests or keeps, and may be
    called from several threads at once.
    """

    def measure(self, view: str, request: MeasureRequest, guards: bool = True) -> Outcome: ...
