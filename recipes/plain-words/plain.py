"""The score: how many of a style guide's plain-word checks the notice passes (0 to 1).

Each check is one example overnight shows the agent: a phrase the guide replaces,
and what to say instead. A check passes when the phrase is gone.
"""

import re

# phrase -> what the style guide says instead (the first choice first)
GUIDE = {
    "in order to": ["to"],
    "facilitate": ["speed up"],
    "the remittance of your refund": ["your money back", "your refund"],
    "commence": ["start"],
    "at this point in time": ["now"],
    "kindly request that you": ["ask you to"],
    "utilize": ["use"],
    "endeavour": ["try"],
    "prior to": ["before"],
    "in the event that": ["if"],
}


def score(path):
    text = open(path, encoding="utf-8").read()
    examples = []
    for phrase, instead in GUIDE.items():
        found = re.search(re.escape(phrase), text, re.IGNORECASE)
        options = " or ".join(f"'{o}'" for o in instead)
        examples.append({
            "id": phrase,
            "input": f"the style guide on '{phrase}'",
            "output": found.group(0) if found else "",
            "expected": f"no '{phrase}'",
            "score": 0.0 if found else 1.0,
            "feedback": f"say {options} instead of '{phrase}'" if found else "",
        })
    return {"score": sum(e["score"] for e in examples) / len(examples), "examples": examples}
