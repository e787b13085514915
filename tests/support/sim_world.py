"""A simulated world for measuring search: a task model that follows rules, an agent model that guesses them.

It is a model of the problem a prompt optimizer faces, not the product. Served by
the loopback server (`LLMServer.simulate(...)`), so overnight reaches it through
litellm's real client path like any model.

The task. Each example is an item marked with a code word; its right answer is the
label of the code word's category. The **task model** (`sim-task`) answers an
example right only when the prompt holds the rule for its category:

- most categories need one rule: "Items marked amber are answered ORBIT.";
- some need two: "Items marked jade belong to the harbour group." and
  "Harbour group items are answered KELP." (a direct rule does not do for them);
- some pairs of rules conflict: with both in the prompt, the one written last
  wins and the other category is answered with the winner's label;
- a rule with a wrong label, written after the right one, wins too.

The **agent model** (`sim-agent`) reads the failing examples in its prompt (their
input names the code word, their expected answer the label) and proposes adding
the rule for one of them, restating it last when it is already there. Sometimes
(`p_wrong`) the rule has a wrong label; sometimes (`p_delete`) it also deletes
another rule; for a two-rule category it writes both rules only sometimes
(`p_both`), else the first one missing. Asked for a bolder change (a
"# Change of approach" section) it writes the rules of up to three failing
categories at once. Asked to merge ("# Version A" and "# Version B") it keeps A
and adds B's rules after A's. It does not read temperature. Its draws come from
one seeded generator, so a run with `parallel = 1` is repeatable.
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

CODES = ["amber", "jade", "coral", "slate", "ivory", "cobalt", "ochre", "teal", "umber", "plum", "sable", "rust",
         "flint", "moss", "pearl", "quartz"]
LABELS = ["ORBIT", "KELP", "LANTERN", "MAPLE", "CINDER", "VELVET", "HARBOR", "PRISM", "TUNDRA", "WILLOW", "EMBER",
          "GLACIER", "NECTAR", "SUMMIT", "QUILL", "RAVEN"]
GROUPS = ["harbour", "orchard", "quarry", "meadow", "canyon", "delta"]
THINGS = ["a crate", "a parcel", "a barrel", "a sack", "a trunk", "a tin", "a basket", "a case"]

START = "Answer with the item's label, one word.\n\nItem: {{ item }}\n"
DIRECT = re.compile(r"Items marked (\w+) are answered (\w+)\.")
MEMBER = re.compile(r"Items marked (\w+) belong to the (\w+) group\.")
GROUP_LABEL = re.compile(r"(\w+) group items are answered (\w+)\.", re.IGNORECASE)
ITEM = re.compile(r"^Item: .*? marked (\w+)", re.MULTILINE)
FENCED = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
EXAMPLE = re.compile(r"^## Example (\S+) .*?\nInput: (.*?)\n(?:.*?\n)?Expected: (\S+)", re.MULTILINE)


@dataclass
class Category:
    code: str
    label: str
    group: str | None = None  # two-rule categories reach their label through a group

    def rules(self) -> list[str]:
        if self.group is None:
            return [f"Items marked {self.code} are answered {self.label}."]
        return [f"Items marked {self.code} belong to the {self.group} group.",
                f"{self.group.capitalize()} group items are answered {self.label}."]


@dataclass
class SimWorld:
    seed: int = 0
    categories: int = 10
    two_rule: int = 3
    conflicts: int = 2
    per_category: int = 3
    p_wrong: float = 0.2
    p_delete: float = 0.3
    p_both: float = 0.35
    cats: list[Category] = field(default_factory=list)
    conflict: dict[str, str] = field(default_factory=dict)  # code -> the code its rule conflicts with
    examples: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        layout = random.Random(f"world-{self.seed}")
        codes, labels = layout.sample(CODES, self.categories), layout.sample(LABELS, self.categories)
        groups = iter(layout.sample(GROUPS, self.two_rule))
        self.cats = [Category(c, lab, next(groups) if i < self.two_rule else None) for i, (c, lab) in enumerate(zip(codes, labels))]
        singles = [c.code for c in self.cats if c.group is None]
        for a, b in zip(singles[: 2 * self.conflicts : 2], singles[1: 2 * self.conflicts: 2]):
            self.conflict[a], self.conflict[b] = b, a
        n = 0
        for cat in self.cats:
            for _ in range(self.per_category):
                n += 1
                thing = layout.choice(THINGS)
                self.examples.append({"id": f"item-{n}", "item": f"{thing} marked {cat.code}, weighing {layout.randint(2, 90)} kg, "
                                      f"shelf {layout.randint(1, 40)}", "label": cat.label})
        layout.shuffle(self.examples)
        self.by_code = {c.code: c for c in self.cats}
        self.agent_rng = random.Random(f"agent-{self.seed}")
        self.lock = threading.Lock()
        self.task_calls = 0
        self.agent_calls = 0

    # -- files ---------------------------------------------------------------------------

    def write(self, folder: Path) -> None:
        """The examples (examples.jsonl) and the starting prompt (prompt.j2), for a recipe."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "examples.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.examples))
        (folder / "prompt.j2").write_text(START)

    def write_recipe(self, folder: Path, url: str, *, name: str = "sim", metric: str = "", agent: str = "",
                     budget: str = "") -> None:
        """The files and a recipe around them: the prompt tuned by the `llm` agent (sim-agent) and
        scored on the examples by the task model (sim-task), both at `url`. `metric`, `agent` and
        `budget` are TOML lines added to their sections."""
        self.write(folder)
        (folder / "recipe.toml").write_text(f"""[recipe]
name = "{name}"

[surface]
kind = "prompt"
path = "prompt.j2"
inputs = ["item"]

[metric]
kind = "dataset"
file = "examples.jsonl"
expected_field = "label"
task_model = "openai/sim-task"
api_base = "{url}"
max_tokens = 10
{metric}

[agent]
kind = "llm"
model = "openai/sim-agent"
api_base = "{url}"
{agent}

[budget]
{budget}
""")

    def install(self, server) -> "SimWorld":
        server.add_rule(lambda request: request.get("model") == "sim-task", self.task_reply)
        server.add_rule(lambda request: request.get("model") == "sim-agent", self.agent_reply)
        return self

    # -- the task model --------------------------------------------------------------------

    def answer(self, prompt: str) -> str:
        """What the task model answers to a rendered prompt."""
        found = ITEM.search(prompt)
        cat = self.by_code.get(found.group(1)) if found else None
        if cat is None:
            return "UNKNOWN"
        said: list[tuple[int, str, str]] = []  # (position, code, label) of every rule that names a label for a code
        groups = {m.group(1).lower(): (m.start(), m.group(2)) for m in GROUP_LABEL.finditer(prompt)}
        for m in DIRECT.finditer(prompt):
            target = self.by_code.get(m.group(1))
            if target is not None and target.group is None:
                said.append((m.start(), m.group(1), m.group(2)))
            elif target is not None and m.group(1) == cat.code:
                said.append((m.start(), m.group(1), "UNKNOWN"))  # a direct rule confuses a two-rule category
        for m in MEMBER.finditer(prompt):
            if m.group(2).lower() in groups:
                pos, label = groups[m.group(2).lower()]
                said.append((max(m.start(), pos), m.group(1), label))
        mine = [s for s in said if s[1] == cat.code]
        rival = self.conflict.get(cat.code)
        theirs = [s for s in said if rival and s[1] == rival and s[2] == self.by_code[rival].label]
        if not mine:
            return "UNKNOWN"
        last = max(mine)
        if theirs and max(theirs) > last and last[2] == cat.label:
            return max(theirs)[2]  # the conflicting rule, written later, wins
        return last[2]

    def accuracy(self, template: str, split_ids: set[str] | None = None) -> float:
        """The share of examples (all, or those in `split_ids`) the task model gets right with this prompt."""
        chosen = [e for e in self.examples if split_ids is None or e["id"] in split_ids]
        right = sum(self.answer(template.replace("{{ item }}", e["item"])) == e["label"] for e in chosen)
        return right / len(chosen)

    def task_reply(self, request: dict) -> str:
        with self.lock:
            self.task_calls += 1
        return self.answer(_prompt(request))

    # -- the agent model -------------------------------------------------------------------

    def agent_reply(self, request: dict) -> str:
        text = _prompt(request)
        with self.lock:
            self.agent_calls += 1
            rng = self.agent_rng
            if "# Version A" in text and "# Version B" in text:
                return self._merge(text)
            current = _version(text)
            if current is None:
                return "I cannot find the text to change."
            failing = [(m.group(2), m.group(3)) for m in EXAMPLE.finditer(text)]
            codes = [c for c in (_code(inp) for inp, _ in failing) if c in self.by_code]
            if not codes:
                return "HYPOTHESIS: nothing fails that I can fix\n```\n" + current + "```\n"
            if "# Change of approach" in text:
                return self._bold(current, codes, rng)
            return self._step(current, rng.choice(codes), rng)

    def _step(self, text: str, code: str, rng: random.Random) -> str:
        cat = self.by_code[code]
        lines = _rules(text)
        if rng.random() < self.p_wrong:
            wrong = rng.choice([c.label for c in self.cats if c.label != cat.label])
            new, idea = [f"Items marked {code} are answered {wrong}."], f"items marked {code} are answered {wrong}"
        elif cat.group and rng.random() >= self.p_both:
            new = [r for r in cat.rules() if r not in lines][:1] or cat.rules()[-1:]
            idea = f"say how {code} items are answered (part of it)"
        else:
            new, idea = cat.rules(), f"add the rule for items marked {code}"
        keep = [r for r in lines if r not in new]
        if keep and rng.random() < self.p_delete:
            dropped = rng.choice(keep)
            keep.remove(dropped)
            idea += f", and drop the rule '{dropped}'"
        return _answer(idea, _with_rules(text, keep + new))

    def _bold(self, text: str, codes: list[str], rng: random.Random) -> str:
        chosen = list(dict.fromkeys(rng.sample(codes, len(codes))))[:3]
        lines = _rules(text)
        new = []
        for code in chosen:
            cat = self.by_code[code]
            if rng.random() < self.p_wrong / 2:
                new.append(f"Items marked {code} are answered {rng.choice([c.label for c in self.cats])}.")
            else:
                new += cat.rules()
        keep = [r for r in lines if r not in new]
        return _answer(f"a bolder change: write the rules for {', '.join(chosen)} at once", _with_rules(text, keep + new))

    def _merge(self, text: str) -> str:
        a, b = (FENCED.search(text, text.find(heading)) for heading in ("# Version A", "# Version B"))
        if a is None or b is None:
            return "I cannot find both versions."
        a, b = a.group(1), b.group(1)
        rules_a = _rules(a)
        added = [r for r in _rules(b) if r not in rules_a]
        return _answer("keep the rules of both versions", _with_rules(a, rules_a + added))


def _prompt(request: dict) -> str:
    return "\n".join(m.get("content") or "" for m in request.get("messages", []) if isinstance(m.get("content"), str))


def _version(text: str) -> str | None:
    for heading in ("# The current best version", "# The version to improve"):
        at = text.find(heading)
        if at >= 0:
            found = FENCED.search(text, at)
            return found.group(1) if found else None
    return None


def _code(item: str) -> str | None:
    found = re.search(r"marked (\w+)", item)
    return found.group(1) if found else None


def _rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if DIRECT.fullmatch(line) or MEMBER.fullmatch(line) or GROUP_LABEL.fullmatch(line)]


def _with_rules(text: str, rules: list[str]) -> str:
    """The text with its rule lines replaced by `rules`, written just before the item line."""
    old = set(_rules(text))
    others = [line for line in text.splitlines() if line not in old]
    at = next((i for i, line in enumerate(others) if "{{" in line), len(others))
    head = [line for line in others[:at] if line.strip()]
    return "\n".join(head + [""] + rules + ([""] if rules else []) + others[at:]) + "\n"


def _answer(hypothesis: str, text: str) -> str:
    return f"HYPOTHESIS: {hypothesis}\n```\n{text}```\n"
