"""A stand-in for a coding agent: it reads the brief overnight wrote and makes one edit.

The command agent runs it as `{python} editor.py {brief} {file}` in a work folder
holding a copy of this recipe with the current best notice in place. It reads the
failing examples of the current best (their feedback says which words to use
instead of which), skips every idea the brief's "Already tried" ledger lists,
makes the first edit left to the file and prints its hypothesis. With nothing
left it prints DONE, and the run ends. A real coding agent (claude, codex,
aider) gets the same brief and the same folder.
"""

import re
import sys

brief_path, file_path = sys.argv[1], sys.argv[2]
brief = open(brief_path, encoding="utf-8").read()
text = open(file_path, encoding="utf-8").read()

tried = set(re.findall(r"^- #\d+ .*?: (replace '.*?' with '.*?') ->", brief, re.MULTILINE))
advice = re.findall(r"^## Example .*?; current best\)\n(?:.*\n)*?Feedback: say (.*) instead of '(.*)'$", brief, re.MULTILINE)


def replace(text, phrase, plain):
    def keep_case(match):
        return plain[0].upper() + plain[1:] if match.group(0)[0].isupper() else plain
    return re.sub(re.escape(phrase), keep_case, text, flags=re.IGNORECASE)


for options, phrase in advice:
    for plain in re.findall(r"'(.*?)'", options):
        idea = f"replace '{phrase}' with '{plain}'"
        if idea in tried:
            continue
        open(file_path, "w", encoding="utf-8").write(replace(text, phrase, plain))
        print(f"HYPOTHESIS: {idea}")
        sys.exit(0)
print("DONE")
