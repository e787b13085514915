"""Agent `llm`: a language model reads what happened and proposes the next change.

It sees traces, not just scores: the failing examples with their outputs and
feedback, the crash log tails, every idea already tried and how it scored, and
the person's own notes. It answers with a one-line hypothesis and either the
whole new text or SEARCH/REPLACE edits of the current best. An answer that
cannot be used is retried once with the problem shown, then recorded as invalid.

Two strategies. `greedy` edits the current best every time. `reflective` keeps
the per-example frontier of what it has seen measured (plugins/frontier.py),
improves a parent drawn from it, now and then merges two candidates that get
different examples right, and after `plateau` proposals without a keep asks for
a bolder change at a higher temperature. Either way the loop alone decides.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, replace

from overnight.core.contracts import Agent, Attempt, Context, ExampleResult, Proposal, Surface
from overnight.core.errors import OvernightError
from overnight.core.hookspecs import hookimpl
from overnight.core.llm import BudgetExceeded, ModelUnavailable
from overnight.core.options import Option
from overnight.core.secrets import MASK, secret_values

from .frontier import Frontier, Member, Pair

WHOLE_LIMIT = 4000  # characters: smaller views are proposed whole, larger ones as edits
FIELD = 600  # characters of one example field shown
FAILING = 12  # failing examples shown in all
PER_ATTEMPT = 2  # failing examples shown per recent experiment
DETAILED = 3  # recent experiments shown with their examples and log tails
TAIL = 1500  # characters of a crash log shown
SHOWN_FAILING = 5  # failing examples the loop shows of one experiment: fewer means that is all of them
NAMED = 20  # example ids named when saying what a version gets right

SYSTEM = """You improve one text, one change at a time. Each change you propose is measured by a metric; \
it is kept only if the score improves, otherwise it is discarded and recorded. Read the failing \
examples and the log of what was already tried, find the cause of the failures, and propose one \
focused change that addresses it. Do not repeat an idea that was already tried. Follow the editing \
rules exactly."""

WHOLE_FORMAT = """Answer in exactly this format:

HYPOTHESIS: <one line: what you change and why it should raise the score>
```
<the whole new text, from its first line to its last>
```"""

EDIT_FORMAT = """Answer in exactly this format: one HYPOTHESIS line, then one or more SEARCH/REPLACE blocks.

HYPOTHESIS: <one line: what you change and why it should raise the score>
<<<<<<< SEARCH
<lines copied exactly from the current best version, including their whitespace>
=======
<the lines that replace them>
>>>>>>> REPLACE

Each SEARCH part must match the current best version exactly and should be just long enough to be \
unique. Blocks are applied in order."""

MERGE_SYSTEM = """You combine two versions of one text. Each was measured by a metric on the same \
examples, and each gets right some examples that the other gets wrong. Write one version that keeps \
what makes each of them right, without the parts that make the other fail. Follow the editing rules \
exactly."""

HYPOTHESIS = re.compile(r"^[\s*#>_-]*hypothesis[\s*_]*:[\s*_]*(.+?)[\s*_]*$", re.IGNORECASE | re.MULTILINE)
BLOCK = re.compile(
    r"^[ \t]*<{5,9} ?SEARCH[^\n]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)^[ \t]*>{5,9} ?REPLACE[^\n]*$",
    re.DOTALL | re.MULTILINE,
)
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n`]*$", re.MULTILINE)


class Unusable(Exception):
    """A reply that holds no usable proposal; the message is shown to the model on the retry."""


class Repeated(Unusable):
    """A reply that proposes a version already measured: asked again once, then handed to the loop,
    which records it as the duplicate it is (not measured again)."""

    def __init__(self, message: str, view: str, rationale: str):
        super().__init__(message)
        self.view, self.rationale = view, rationale


class LLMAgent(Agent):
    name = "llm"
    summary = "A language model reads the failing examples and past experiments and proposes the next edit."
    uses_llm = True
    options = {
        "model": Option(str, "the model that proposes, in litellm's naming (gpt-4o-mini, ollama/llama3.2, openai/NAME)", required=True),
        "api_base": Option(str, "the server's URL, for Ollama or an OpenAI-compatible server of your own", default=None),
        "temperature": Option(float, "sampling temperature", default=0.7, min=0, max=2),
        "max_tokens": Option(int, "the longest answer, in tokens (default 4096; 16000 for a model that reasons)", default=None, min=16),
        "price": Option(dict, "dollars per million tokens, { input = 1.0, output = 5.0 }, for a model litellm has no price for", default=None),
        "options": Option(dict, "Ollama model options such as { num_ctx = 8192 } (ollama_chat/ models only)", default={}),
        "instructions": Option(str, "a file (such as program.md) whose text is given to the model as is", default=None),
        "history": Option(int, "how many past experiments the model is shown", default=20, min=0),
        "edit_format": Option(str, "whole or search_replace; by default whole for texts under 4,000 characters",
                              default=None, choices=("whole", "search_replace")),
        "timeout": Option(float, "seconds one call may take", default=60.0, min=1),
        "strategy": Option(str, "greedy: always edit the best; reflective: improve and merge candidates "
                                "from the per-example frontier, bolder after a plateau", default="reflective",
                           choices=("greedy", "reflective")),
        "merge_every": Option(int, "reflective: at most one merge of two frontier candidates in this many proposals (0: never)",
                              default=4, min=0),
        "plateau": Option(int, "reflective: proposals without a keep before the agent changes its approach (0: never)",
                          default=5, min=0),
        "plateau_temperature": Option(float, "reflective: the temperature after a plateau (default: temperature + 0.5)",
                                      default=None, min=0, max=2),
        "seed": Option(int, "reflective: the seed of the parent draws", default=0),
        "screen": Option(int, "reflective: measure each proposal on this many train examples first, against its "
                              "parent, and on all of them only when it does not lose there (0: never)", default=0, min=0),
    }

    def __init__(self, options, recipe_dir):
        super().__init__(options, recipe_dir)
        self.instructions = ""
        self.surface: Surface | None = None
        self.search = Reflection(self.config) if self.config.get("strategy") == "reflective" else None

    def prepare(self, surface: Surface) -> None:
        self.surface = surface
        name = self.config.get("instructions")
        if name:
            file = self.path(name)
            try:
                self.instructions = file.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise OvernightError(f"The instructions file {file} does not exist (agent instructions = {name!r}).") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise OvernightError(f"Cannot read the instructions file {file} (agent instructions = {name!r}): {exc}.") from None
        if self.llm is None:
            raise OvernightError("The llm agent was built without a model gateway; run it through overnight run.")
        from overnight.core import llm as gateway, providers

        c = self.config
        providers.check_options(c["model"], c.get("options"))
        self.llm.check_model(c["model"], c.get("api_base"), price=c.get("price"), where="[agent]")
        c["max_tokens"] = providers.default_max_tokens(gateway.litellm(), c["model"], c.get("max_tokens"), 4096)

    # -- proposing -------------------------------------------------------------

    def start(self, surface: Surface, history: list[Attempt]) -> None:
        if self.search:
            self.search.start(history)

    def observe(self, attempt: Attempt) -> None:
        if self.search:
            self.search.observe(attempt)

    def propose(self, context: Context) -> Proposal | None:
        if self.search:
            return self._propose_reflective(context)
        edit_format = self._format(context.best_view)
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": self.prompt(context, edit_format)},
        ]
        proposal = Proposal(meta={"model": self.config["model"], "format": edit_format})
        return self._ask(proposal, messages, context.best_view, edit_format, self.config["temperature"])

    def _propose_reflective(self, context: Context) -> Proposal:
        plan = self.search.plan(context)
        parents = [m.key for m in plan.parents]
        base = plan.parents[0].view
        edit_format = self._format(base)
        if plan.mode == "merge":
            messages = [{"role": "system", "content": MERGE_SYSTEM},
                        {"role": "user", "content": self.merge_prompt(context, plan, edit_format)}]
        else:
            messages = [{"role": "system", "content": SYSTEM},
                        {"role": "user", "content": self.reflective_prompt(context, plan, edit_format)}]
        proposal = Proposal(parents=parents, meta={
            "model": self.config["model"], "format": edit_format, "strategy": "reflective", "mode": plan.mode,
            "parents": parents, "merge": plan.mode == "merge", "proposal": plan.token})
        proposal = self._ask(proposal, messages, base, edit_format, plan.temperature, whole=True)
        proposal.trace = f"{plan.note}\n{proposal.trace}"
        if proposal.view is not None and not proposal.error:
            self.search.pending(plan, proposal.view)
            proposal.screen_on = self.search.minibatch(plan)
        return proposal

    def _ask(self, proposal: Proposal, messages: list[dict], base: str, edit_format: str, temperature: float,
             whole: bool = False) -> Proposal:
        """Asks the model, retries once with the problem shown, and fills the proposal.
        `whole` returns the whole new view even when the model answered with edits (they apply to
        `base`, which the loop does not know when it is not the best)."""
        replies: list[str] = []
        for attempt in (1, 2):
            try:
                reply = self.llm.complete(
                    role="agent", model=self.config["model"], messages=messages, api_base=self.config.get("api_base"),
                    temperature=temperature, max_tokens=self.config["max_tokens"] or 4096,
                    timeout=self.config["timeout"], cache=False, **(self.config.get("options") or {}),
                )
            except ModelUnavailable as exc:
                if exc.call:
                    proposal.llm_calls.append(exc.call)
                return self._failed(proposal, exc.message, replies)
            except BudgetExceeded as exc:
                if not proposal.llm_calls:
                    raise  # nothing was spent on this proposal: the run stops here
                return self._failed(proposal, exc.reason, replies)
            proposal.llm_calls.append(reply.call)
            proposal.cost_usd += reply.call.cost_usd
            proposal.tokens += reply.call.prompt_tokens + reply.call.completion_tokens
            replies.append(reply.text)
            try:
                self._use(proposal, reply.text, reply.finish_reason, base, whole)
                proposal.trace = _replies_trace(proposal, replies)
                return proposal
            except Unusable as exc:
                problem = str(exc)
                if attempt == 2 and isinstance(exc, Repeated):
                    proposal.view, proposal.edits, proposal.rationale = exc.view, [], exc.rationale
                    proposal.trace = _replies_trace(proposal, replies)
                    return proposal
                if attempt == 2:
                    return self._failed(proposal, problem, replies)
                proposal.meta["retried"] = problem
                messages = messages + [
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": f"That answer could not be used: {problem}\n\n"
                                                f"Answer again.\n\n{_format_help(edit_format, reply.finish_reason)}"},
                ]
        return None  # unreachable: the second attempt always returns

    def estimate(self, context: Context) -> tuple[int, float]:
        """Tokens and dollars one proposal may take at most (its retry doubles it), for a dry run."""
        edit_format = self._format(context.best_view)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": self.prompt(context, edit_format)}]
        return self.llm.estimate(self.config["model"], messages, self.config["max_tokens"])

    def _format(self, view: str) -> str:
        chosen = self.config.get("edit_format")
        if chosen:
            return chosen
        return "whole" if len(view) < WHOLE_LIMIT else "search_replace"

    def _use(self, proposal: Proposal, text: str, finish_reason: str, base: str, whole: bool = False) -> None:
        if finish_reason == "length":
            raise Unusable(f"the answer was cut off at max_tokens ({self.config['max_tokens']}); "
                           "give a shorter answer (SEARCH/REPLACE edits need fewer tokens than the whole text)")
        text = without_thinking(text)
        refused_or_cut(text)
        hypothesis = hypothesis_of(text)
        text = without_new_secrets(text, base)
        edits = parse_edits(text)
        if edits:
            view = apply_edits(base, edits)
            proposal.edits = [(old, new) for old, new in edits]
            edits_or_view = "edits"
        else:
            view = parse_whole(text, base)
            proposal.view = view
            edits_or_view = "view"
        if view == base:
            proposal.view, proposal.edits = None, []
            raise Unusable("the proposal changes nothing; propose a real change")
        earlier = self.search.measured(view) if self.search else None
        if earlier is not None:  # the loop would record a duplicate and learn nothing
            proposal.view, proposal.edits = None, []
            raise Repeated(f"this exact version was already measured (experiment #{earlier}); propose a different change",
                           view, hypothesis or "(no hypothesis given)")
        problems = self.surface.problems(view, base) if self.surface else []
        if problems:
            proposal.view, proposal.edits = None, []
            raise Unusable("the surface rejects it: " + "; ".join(problems))
        proposal.rationale = hypothesis or "(no hypothesis given)"
        proposal.meta["answer"] = edits_or_view
        if whole:
            proposal.view, proposal.edits = view, []

    def _failed(self, proposal: Proposal, problem: str, replies: list[str]) -> Proposal:
        proposal.view, proposal.edits = None, []
        proposal.error = problem if len(replies) < 2 else f"{problem} (after one retry)"
        proposal.rationale = next((h for h in map(hypothesis_of, reversed(replies)) if h), "")
        proposal.trace = _replies_trace(proposal, replies)
        return proposal

    # -- the context -------------------------------------------------------------

    def prompt(self, c: Context, edit_format: str) -> str:
        """The whole request, in sections; each section says what it is."""
        out = self._head(c)
        out.append(f"# The current best version\n{_fenced(c.best_view)}")
        out += self._failing_section(c, "the current best or a recent attempt")
        out += self._tail(c)
        out.append(f"# Your answer\n{_format_help(edit_format)}")
        return "\n\n".join(out) + "\n"

    def reflective_prompt(self, c: Context, plan: "Plan", edit_format: str) -> str:
        """As `prompt`, for a parent drawn from the frontier, which may not be the best."""
        parent = plan.parents[0]
        out = self._head(c)
        if parent.view == c.best_view:
            out.append(f"# The current best version\n{_fenced(parent.view)}")
        else:
            better = self.search.frontier.compare(parent.key, plan.best).wins
            out.append(f"# The version to improve\nExperiment #{parent.key} (score {_num(parent.mean)}; the best "
                       f"scores {_num(c.best_score)}). It gets right train examples the best gets wrong: {_ids(better)}. "
                       f"Improve it without losing those.\n{_fenced(parent.view)}")
        if plan.mode == "plateau":
            out.append(f"# Change of approach\n{plan.stalled}")
        out += self._failing_section(replace(c, failing=parent.failing), "this version or a recent attempt",
                                     "the version to improve" if parent.view != c.best_view else "current best")
        out += self._tail(c)
        out.append(f"# Your answer\n{_format_help(edit_format)}")
        return "\n\n".join(out) + "\n"

    def merge_prompt(self, c: Context, plan: "Plan", edit_format: str) -> str:
        """Two frontier candidates, what each gets right that the other does not, and a request to combine them."""
        a, b = plan.parents
        out = self._head(c)
        out.append(f"# Version A (experiment #{a.key}, score {_num(a.mean)})\nIt gets these train examples right where "
                   f"version B does not: {_ids(plan.pair.a_wins)}.\n{_fenced(a.view)}")
        out.append(f"# Version B (experiment #{b.key}, score {_num(b.mean)})\nIt gets these train examples right where "
                   f"version A does not: {_ids(plan.pair.b_wins)}.\n{_fenced(b.view)}")
        shown = [_example(e, "version A fails it") for e in a.failing if e.id in plan.pair.b_wins][:FAILING // 2]
        shown += [_example(e, "version B fails it") for e in b.failing if e.id in plan.pair.a_wins][:FAILING // 2]
        if shown:
            out.append("# Examples in play\nTraining examples one version gets wrong and the other gets right:\n\n"
                       + "\n\n".join(shown))
        out += self._tail(c)
        where = " The SEARCH parts must match version A, to which the blocks apply." if edit_format == "search_replace" else ""
        out.append(f"# Your answer\nOne version that keeps what each gets right.{where}\n{_format_help(edit_format)}")
        return "\n\n".join(out) + "\n"

    def _head(self, c: Context) -> list[str]:
        return head_sections(c, self.instructions)

    def _failing_section(self, c: Context, whose: str, label: str = "current best") -> list[str]:
        failing = failing_examples(c, label)
        if not failing:
            return []
        return [f"# Failing examples\nTraining examples where {whose} falls short:\n\n" + "\n\n".join(failing)]

    def _tail(self, c: Context) -> list[str]:
        return tail_sections(c, self.config["history"])


# -- the sections of a request (the command agent's brief has the same) -------------------


def head_sections(c: Context, instructions: str) -> list[str]:
    """What is measured, the editing rules, the person's instructions and notes."""
    out: list[str] = []
    best = "not measured" if c.best_score is None else f"{c.best_score:g}"
    base = "not measured" if c.baseline_score is None else f"{c.baseline_score:g}"
    out.append(f"# What is measured\n{c.metric}\nGoal: {c.goal} the score. "
               f"Best score so far: {best} (the original scored {base}).")
    out.append(f"# Editing rules\n{c.rules}")
    if instructions:
        out.append(f"# Instructions from the person who runs this\n{instructions}")
    if c.notes:
        out.append("# Notes and steering from people (follow them)\n" + "\n".join(f"- {n}" for n in c.notes))
    return out


def failing_examples(c: Context, label: str = "current best") -> list[str]:
    """`c.failing` (labelled `label`), then a few of each recent experiment's; at most FAILING."""
    shown: list[str] = []
    seen: set[tuple[str, str]] = set()

    def add(example: ExampleResult, where: str) -> None:
        key = (example.id, example.output)
        if key in seen or len(shown) >= FAILING or example.split != "train":
            return
        seen.add(key)
        shown.append(_example(example, where))

    for e in c.failing[: FAILING - PER_ATTEMPT]:
        add(e, label)
    for a in reversed(c.history[-DETAILED:]):
        for e in a.failing[:PER_ATTEMPT]:
            add(e, f"experiment {a.seq} ({a.status})")
    return shown


def tail_sections(c: Context, history: int) -> list[str]:
    """What was already tried, the recent crash logs, and the budget left."""
    out = []
    by_seq: dict[int, Attempt] = {a.seq: a for a in c.ledger}
    by_seq.update({a.seq: a for a in c.history})
    tried = [_line(by_seq[s]) for s in sorted(by_seq) if s > 0][-history:] if history else []
    if tried:
        out.append("# Already tried (newest last; do not repeat these ideas)\n" + "\n".join(tried))
    crashes = []
    for a in c.history[-DETAILED:]:
        if a.status in ("crash", "timeout") and a.trace:
            crashes.append(f"Experiment {a.seq} ({a.status}: {a.reason}), end of its log:\n{_fenced(a.trace[-TAIL:])}")
    if crashes:
        out.append("# Recent crashes and timeouts\n" + "\n\n".join(crashes))
    if c.budget_left:
        out.append("# Budget left\n" + ", ".join(f"{k} {_number(v)}" for k, v in c.budget_left.items()))
    return out


# -- the reflective strategy -----------------------------------------------------------


@dataclass
class Plan:
    """Where the next reflective proposal starts, and why (the trace's first line says it)."""

    mode: str  # "improve", "merge" or "plateau"
    parents: list[Member]
    best: int  # the current best's key
    temperature: float
    note: str
    token: str  # matches the proposal's outcome to it (meta["proposal"])
    pair: Pair | None = None
    stalled: str = ""  # for a plateau: what was tried since the last keep


class Reflection:
    """The reflective strategy's memory: the frontier, the proposals in flight, the plateau count.
    Proposals may be asked for from several threads at once (parallel runs), hence the lock."""

    def __init__(self, config: dict):
        self.config = config
        self.frontier = Frontier()
        self.rng = random.Random(config["seed"])
        self.lock = threading.Lock()
        self.best_key = 0  # the baseline's seq, until a keep is seen
        self.count = 0
        self.since_keep = 0
        self.recent: list[Attempt] = []  # outcomes since the last keep
        self.merged: set[frozenset[int]] = set()
        self.in_flight: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.seen: dict[str, int] = {}  # view -> the experiment that measured it
        self.last_parent: int | None = None
        self.last_merge = 0  # the proposal count at the last merge: at most one every `merge_every`

    def start(self, history: list[Attempt]) -> None:
        """On --resume: the plateau count and the merges already tried carry on; the frontier
        starts again from the best (its per-example scores are not in the history)."""
        keeps = [a.seq for a in history if a.status == "keep"]
        self.best_key = keeps[-1] if keeps else 0
        self.recent = [a for a in history if a.seq > self.best_key and a.status not in ("baseline", "interrupted")]
        self.since_keep = len(self.recent)
        self.merged = {frozenset(a.meta["parents"]) for a in history if a.meta.get("merge")}
        self.count = self.last_merge = sum(1 for a in history if a.meta.get("strategy") == "reflective")

    def plan(self, c: Context) -> Plan:
        with self.lock:
            best = self._best(c)
            self.count += 1
            token, temperature = f"p{self.count}", self.config["temperature"]
            every = self.config["merge_every"]
            pairs = []
            if every and self.count - self.last_merge >= every:
                # Merging into the best is what raises the score the run reports: those pairs first.
                pairs = self.frontier.pairs(self.merged, with_key=best.key) or self.frontier.pairs(self.merged)
            if pairs:
                pair = self.rng.choices(pairs, weights=[min(len(p.a_wins), len(p.b_wins)) for p in pairs])[0]
                self.merged.add(frozenset((pair.a, pair.b)))
                self.last_merge = self.count
                a, b = self.frontier.members[pair.a], self.frontier.members[pair.b]
                note = (f"reflective: merge of #{a.key} and #{b.key}: #{a.key} gets {len(pair.a_wins)} train examples "
                        f"right that #{b.key} does not, #{b.key} gets {len(pair.b_wins)} that #{a.key} does not")
                return Plan("merge", [a, b], best.key, temperature, note, token, pair)
            front = self.frontier.front()
            where = "; frontier: " + (", ".join(f"#{k} leads {len(v)}" for k, v in sorted(front.items())) or "the best only")
            plateau = self.config["plateau"]
            if plateau and self.since_keep >= plateau:
                key = self.frontier.pick(self.rng, best.key, exclude={self.last_parent})
                hot = self.config["plateau_temperature"]
                hot = min(2.0, temperature + 0.5) if hot is None else hot
                self.last_parent = key
                note = (f"reflective: plateau ({self.since_keep} proposals without a keep): a bolder change of "
                        f"#{key} at temperature {hot:g}{where}")
                return Plan("plateau", [self.frontier.members[key]], best.key, hot, note, token, stalled=self._stalled())
            key = self.frontier.pick(self.rng, best.key)
            self.last_parent = key
            return Plan("improve", [self.frontier.members[key]], best.key, temperature,
                        f"reflective: improve #{key}{where}", token)

    def measured(self, view: str) -> int | None:
        """The experiment that already measured this exact view, if any."""
        with self.lock:
            return self.seen.get(view)

    def minibatch(self, plan: Plan) -> dict[str, float]:
        """The train examples to screen a proposal on, with its parent's scores there; none for a
        merge (it is measured in full) or when the minibatch would not be smaller than the train set."""
        size = self.config.get("screen") or 0
        if not size or plan.mode == "merge":
            return {}
        with self.lock:
            parent = plan.parents[0]
            known = [e for e in self.frontier.examples() if parent.score(e) is not None]
            if len(known) <= size:
                return {}
            return {e: parent.score(e) for e in self.frontier.sample(parent.key, size, self.rng)}

    def pending(self, plan: Plan, view: str) -> None:
        with self.lock:
            self.in_flight[plan.token] = (view, tuple(m.key for m in plan.parents))

    def observe(self, attempt: Attempt) -> None:
        with self.lock:
            flight = self.in_flight.pop(attempt.meta.get("proposal"), None)
            if attempt.status == "interrupted":
                return
            if flight is not None and attempt.status != "invalid":
                self.seen.setdefault(flight[0], attempt.seq)
            if attempt.status == "keep":
                self.since_keep, self.recent, self.best_key = 0, [], attempt.seq
            else:
                self.since_keep += 1
                self.recent.append(attempt)
            if flight is None or attempt.score is None or attempt.status not in ("keep", "discard"):
                return  # only a measured candidate that passed its guards may become a parent
            train = [e for e in attempt.failing if e.split == "train"]
            if attempt.scores:
                scores, complete = dict(attempt.scores), True
            else:  # the loop showed failing examples only, and at most SHOWN_FAILING of them
                scores, complete = {e.id: e.score for e in train}, len(train) < SHOWN_FAILING
            view, parents = flight
            self.frontier.add(Member(attempt.seq, view, scores, complete, attempt.score, parents, train))

    def _best(self, c: Context) -> Member:
        """The current best, as a member whose every failing train example is known."""
        m = self.frontier.find(c.best_view) or self.frontier.add(Member(self.best_key, c.best_view, mean=c.best_score))
        self.seen.setdefault(c.best_view, m.key)
        train = [e for e in c.failing if e.split == "train"]
        return self.frontier.learn(m.key, {e.id: e.score for e in train}, complete=True, failing=train, mean=c.best_score)

    def _stalled(self) -> str:
        lines = [_line(a) for a in self.recent[-8:]]
        return (f"The last {self.since_keep} proposals were not kept:\n" + "\n".join(lines) + "\n"
                "Small edits like these are not paying off. Make one bolder change that takes a different route: "
                "rewrite the part that matters, restructure it, or drop what does not help.")


def _num(value: float | None) -> str:
    return "not measured" if value is None else f"{value:g}"


def _ids(ids) -> str:
    ids = list(ids)
    more = f" and {len(ids) - NAMED} more" if len(ids) > NAMED else ""
    return (", ".join(ids[:NAMED]) + more) or "none"


# -- reading answers ------------------------------------------------------------------


def parse_edits(text: str) -> list[tuple[str, str]]:
    """SEARCH/REPLACE blocks as (search, replace) pairs, in order."""
    return [(search, replace) for search, replace in BLOCK.findall(text)]


def apply_edits(base: str, edits: list[tuple[str, str]]) -> str:
    """Applies the edits as the loop will; raises Unusable naming the first SEARCH text not found.

    A SEARCH text that differs from the view only by trailing spaces or a final
    newline is corrected in place, so the loop applies exactly what was meant.
    """
    view = base
    for i, (search, replace) in enumerate(edits):
        if not search.strip():
            raise Unusable(f"SEARCH block {i + 1} is empty; copy the lines to change from the current best version")
        exact = _locate(view, search)
        if exact is None:
            snippet = search.strip().splitlines()[0][:80]
            raise Unusable(f"the SEARCH text of block {i + 1} is not in the current best version "
                           f"(it starts {snippet!r}); copy the lines exactly")
        if exact != search and search.endswith("\n") and not exact.endswith("\n"):
            replace = replace[:-1] if replace.endswith("\n") else replace
        edits[i] = (exact, replace)
        view = view.replace(exact, replace, 1)
    return view


def _locate(view: str, search: str) -> str | None:
    """The exact text of the view that `search` means, or None."""
    if search in view:
        return search
    if search.endswith("\n") and search[:-1] in view:
        return search[:-1]  # the last line of a file without a final newline
    wanted = [line.rstrip() for line in search.rstrip("\n").split("\n")]
    lines = view.splitlines(keepends=True)
    for start in range(len(lines) - len(wanted) + 1):
        if all(lines[start + k].rstrip() == wanted[k] for k in range(len(wanted))):
            return "".join(lines[start:start + len(wanted)])
    return None


THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>\s*", re.DOTALL | re.IGNORECASE)
REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i can(no|')t|i'm (not )?able|i am unable|i'm unable|"
                     r"as an ai|i won'?t)", re.IGNORECASE)
LEAD_IN = re.compile(r"^(here('s| is)|below is|the (new|improved|updated|revised)\b)[^\n]*:\s*\n", re.IGNORECASE)


def without_thinking(text: str) -> str:
    """A reasoning model's <think> block is its draft, not its answer: drop it (fences and all)."""
    text = THINK.sub("", text)
    if re.match(r"\s*<(think|thinking|reasoning)>", text, re.IGNORECASE):
        raise Unusable("the answer was cut off inside its <think> block; give a shorter answer")
    return text


def refused_or_cut(text: str) -> None:
    """A refusal or a visibly cut reply is never applied, whatever the finish reason said."""
    if not text.strip():
        raise Unusable("the answer is empty; give a HYPOTHESIS line and the whole new text")
    if REFUSAL.match(text) and not HYPOTHESIS.search(text):
        raise Unusable(f"the model declined ({text.strip().splitlines()[0][:120]!r}); propose one concrete change")
    if re.search(r"^[ \t]*<{5,9} ?SEARCH", text, re.MULTILINE) and not re.search(r"^[ \t]*>{5,9} ?REPLACE", text, re.MULTILINE):
        raise Unusable("the answer was cut off inside a SEARCH/REPLACE block; give a shorter answer")


def _blocks(text: str, fences: list) -> list[str]:
    """Fenced blocks read one after another: an opening fence, then the next bare one closes it."""
    out, opening = [], None
    for f in fences:
        if opening is None:
            opening = f
        elif f.group(0).strip() == f.group(1):
            out.append(text[opening.end() + 1:f.start()])
            opening = None
    return out


def _plain(text: str, base: str) -> str:
    """A reply that followed the format but for the fence: the text after its HYPOTHESIS line,
    taken when it reads as a whole text (the surface's own check still refuses garbage)."""
    m = HYPOTHESIS.search(text)
    body = LEAD_IN.sub("", (text[:m.start()] + text[m.end():]).strip("\n") if m else "", count=1)
    if not m or not body.strip():
        raise Unusable("no proposal found: give the whole new text in one fenced block (``` ... ```) after the HYPOTHESIS line")
    if not 0.2 <= len(body) / max(len(base), 1) <= 5:
        raise Unusable("no proposal found: the text after the HYPOTHESIS line does not read as the whole new text; "
                       "put it in one fenced block (``` ... ```)")
    return body


def parse_whole(text: str, base: str) -> str:
    """The text of the one fenced block: from the first fence line to the last closing one,
    so fences inside the proposed text (a Markdown prompt, say) survive. When the reply quotes
    the current text in a block of its own, the first block that differs from it is the answer;
    a reply with no fence at all is read by _plain."""
    fences = list(FENCE.finditer(text))
    if not fences:
        body = _plain(text, base)
        return body + "\n" if base.endswith("\n") and not body.endswith("\n") else body.rstrip("\n") if not base.endswith("\n") else body
    if len(fences) < 2:
        raise Unusable("the fenced block is not closed (the answer was cut off?); end it with a line holding only ```")
    blocks = _blocks(text, fences)
    quoted = [b for b in blocks if b.strip() == base.strip()]
    fresh = [b for b in blocks if b.strip() != base.strip()]
    opening, closing = fences[0], None
    for f in reversed(fences[1:]):
        if f.group(0).strip() == f.group(1):  # a bare fence closes
            closing = f
            break
    if closing is None:
        raise Unusable("the fenced block is not closed; end it with a line holding only ```")
    body = fresh[0] if quoted and fresh else text[opening.end() + 1:closing.start()]
    if base.endswith("\n") and not body.endswith("\n"):
        body += "\n"
    elif not base.endswith("\n") and body.endswith("\n"):
        body = body[:-1]
    return body


def without_new_secrets(text: str, base: str) -> str:
    """A model may echo a key it saw; candidates are stored as proposed, so it is masked here.
    A secret already in the person's own text is theirs to keep, and left alone."""
    for value in secret_values():
        if value in text and value not in base:
            text = text.replace(value, MASK)
    return text


def hypothesis_of(text: str) -> str:
    m = HYPOTHESIS.search(text)
    return m.group(1).strip()[:300] if m else ""


def _format_help(edit_format: str, finish_reason: str = "stop") -> str:
    if edit_format == "search_replace" or finish_reason == "length":
        return EDIT_FORMAT
    return WHOLE_FORMAT


def _fenced(text: str) -> str:
    longest = max((len(m.group(1)) for m in FENCE.finditer(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}{'' if text.endswith(chr(10)) else chr(10)}{fence}"


def _clip(text: str, limit: int = FIELD) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 15] + " ... (cut here)"


def _example(e: ExampleResult, where: str) -> str:
    lines = [f"## Example {e.id} (score {e.score:g}; {where})", f"Input: {_clip(e.input)}", f"Output: {_clip(e.output)}"]
    if e.expected:
        lines.append(f"Expected: {_clip(e.expected)}")
    if e.feedback:
        lines.append(f"Feedback: {_clip(e.feedback)}")
    return "\n".join(lines)


def _line(a: Attempt) -> str:
    score = "" if a.score is None else f" score {a.score:g}"
    delta = "" if a.delta is None else f" ({a.delta:+g} vs the original)"
    idea = _clip(a.rationale or "no hypothesis", 200)
    reason = _clip(a.reason or "", 200)
    return f"- #{a.seq} {a.status}{score}{delta}: {idea} -> {reason}"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _replies_trace(proposal: Proposal, replies: list[str]) -> str:
    parts = [f"--- answer {i + 1} ---\n{r}" for i, r in enumerate(replies)]
    if proposal.meta.get("retried"):
        parts.insert(1, f"--- retried because: {proposal.meta['retried']} ---")
    return "\n".join(parts)


@hookimpl
def overnight_register_agents(register):
    register(LLMAgent)
