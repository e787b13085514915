"""The line diff of text surfaces: as `diff -u` shows it, and for a small change to a long file,
made from the part that changed, with the hunks numbered as in the whole file."""

from __future__ import annotations

import difflib
import hashlib
import random
import re

from pathlib import Path

from overnight.core.contracts import Surface, line_diff
from overnight.core.linediff import alike
from overnight.core.record import bounded_diff
from tests.data.core.kit import recipe


def whole(old: str, new: str, name: str) -> str:
    """difflib on the whole texts, as the diff was made before long files had a diff."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def patched(old: str, diff: str) -> str:
    """`old` with a unified diff applied, as patch(1) would."""
    a, out, at = old.splitlines(keepends=True), [], 0
    for hunk in re.split(r"^(?=@@ )", diff, flags=re.M)[1:]:
        head, *body = hunk.splitlines(keepends=True)
        first, length = re.match(r"@@ -(\d+)(?:,(\d+))?", head).groups()
        start = int(first) - 1 if length != "0" else int(first)
        out += a[at:start]
        at = start
        for line in body:
            if line[0] in " -":
                at += 1
            if line[0] in " +":
                out.append(line[1:])
    return "".join(out + a[at:])


def edits(seed: int) -> tuple[str, str]:
    rng = random.Random(seed)
    a = [rng.choice("abcdefg") + "\n" for _ in range(rng.randint(0, 40))]
    b = list(a)
    for _ in range(rng.randint(1, 4)):
        i = rng.randint(0, len(b))
        roll = rng.random()
        if roll < 0.4 and b:
            b[min(i, len(b) - 1)] = rng.choice("xyz") + "\n"
        elif roll < 0.7:
            b.insert(i, rng.choice("abxyz") + "\n")
        elif b:
            del b[min(i, len(b) - 1)]
    return "".join(a), "".join(b)


def test_a_file_of_ordinary_length_gets_exactly_the_diff_it_always_had():
    for seed in range(500):
        old, new = edits(seed)
        assert line_diff(old, new, "f") == whole(old, new, "f")


def test_set_aside_or_not_every_diff_turns_the_old_text_into_the_new():
    for seed in range(2000):
        old, new = edits(seed)
        assert patched(old, line_diff(old, new, "f", whole=0)) == new, seed


def test_a_one_line_change_to_a_long_file_is_a_diff_of_one_line_numbered_as_in_the_file(workspace, cli):
    text = "".join(f"line {i}\n" for i in range(150_000))  # 1.6 MB: past the limit a diff compares
    changed = text.replace("line 90000\n", "line 90000, changed\n")
    folder = recipe(workspace / "long", text=text, proposals=[changed])
    assert cli("run", folder, "--yes", "-q").exit_code == 0

    shown = cli("diff", "1:1")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[2:] == [
        "@@ -89998,7 +89998,7 @@", " line 89997", " line 89998", " line 89999", "-line 90000", "+line 90000, changed",
        " line 90001", " line 90002", " line 90003"]
    assert patched(text, shown.output) == changed


def test_past_the_limit_what_changed_counts_not_the_files_length():
    class Lines:  # a surface with the line diff it inherits
        from overnight.core.contracts import Surface
        diff = Surface.diff

        def source(self):
            from pathlib import Path
            return Path("doc.txt")

    text = "a\n" * 600_000
    assert bounded_diff(Lines(), text, text.replace("a\n", "b\n", 1)).startswith("--- a/doc.txt")
    assert bounded_diff(Lines(), text, "b\n" * 600_000).startswith("(no diff: 1,200,000 and 1,200,000 characters")


def test_changes_scattered_through_a_long_file_are_a_diff_of_their_stretches():
    """A hundred one-line changes spread over 200,000 lines: difflib compares only the stretches
    around them, so the diff is made, hunk by hunk, and numbered as in the file."""
    rng = random.Random(7)
    lines = [f"line {i} {rng.random():.6f}\n" for i in range(200_000)]
    changed = list(lines)
    at = sorted(rng.sample(range(200_000), 100))
    for i in at:
        changed[i] = changed[i].replace("line", "LINE")
    changed.insert(150_000, "a new line\n")
    old, new = "".join(lines), "".join(changed)
    assert line_diff(old, new, "f", limit=100_000) is not None  # stretches of a hundred lines or so, of 7 MB
    diff = line_diff(old, new, "f")
    assert diff.count("\n@@ ") == 101 and patched(old, diff) == new
    assert f"@@ -{at[0] - 2},7 +{at[0] - 2},7 @@" in diff


def test_a_long_file_in_another_order_is_diffed_stretch_by_stretch_and_one_with_no_anchor_is_not():
    """Reordered lines still have anchors (an ordered run of the lines found once), so difflib
    compares stretches between them; a long file whose every line comes twice has none, and one
    stretch that long is past the limit: a summary line, not minutes of difflib."""
    class Plain(Surface):  # the line diff every text surface has
        name = "plain"
        apply = materialize = read = None

        def source(self):
            return Path("rows.txt")

    rng = random.Random(3)
    lines = [f"row {i}\n" for i in range(100_000)]
    shuffled = list(lines)
    rng.shuffle(shuffled)
    old, new = "".join(lines), "".join(shuffled)
    assert patched(old, bounded_diff(Plain({}, Path(".")), old, new)) == new
    twice = [f"row {i % 50_000}\n" for i in range(100_000)]
    rng.shuffle(twice)
    said = bounded_diff(Plain({}, Path(".")), old, "".join(twice))
    assert said.startswith("(no diff: ") and "past the limit of 1,000,000; they differ" in said


def test_several_long_stretches_each_under_the_limit_are_past_it_together():
    """Three stretches of nearly a million characters each, of lines drawn from a few values (the
    worst for difflib): together they would take minutes, so the diff is the summary line."""
    rng = random.Random(5)
    old, new = [], []
    for block in range(3):
        old += [f"separator {block} {i}\n" for i in range(400)]
        new += [f"separator {block} {i}\n" for i in range(400)]
        old += [f"v{rng.randrange(1210)}\n" for _ in range(120_000)]
        new += [f"v{rng.randrange(1210)}\n" for _ in range(120_000)]
    assert line_diff("".join(old), "".join(new), "f", limit=1_000_000) is None


# sha256 of the diffs of `long_edits(0)` to `long_edits(15)`, first 16 digits, as core/linediff.py made them
# before its anchors were found faster (each diff compared stretch by stretch, 1 to 292 hunks).
LONG_DIFFS_BEFORE = ["fcc9fcc15e12e165", "0484363abbadd8d3", "76df45352045aea1", "6d8e1a3f8278bcd2",
          "5f300af32b31d95c", "b94d0ffd8e880737", "41742bc2db948090", "413adf29a260ffe8",
          "90c31f497dd81402", "fa1a7269f6e997fb", "c499c9ecb35ba4bf", "cc0f1306e7e6d175",
          "ab384dd270da5c2d", "0f1ee564f5b778d3", "65e1210aaf76d9c4", "c6e2981d014941ec"]


def long_edits(seed: int) -> tuple[str, str]:
    """A long text and an edit of it: lines inserted, deleted, changed and moved in blocks, in one
    place or hundreds, among lines found once or lines that come again and again."""
    rng = random.Random(seed)
    repeats = rng.choice([0.0, 0.3, 0.9])  # the share of lines that come again and again
    old = [f"v{rng.randrange(40)}\n" if rng.random() < repeats else f"line {i} {rng.random():.6f}\n"
           for i in range(rng.choice([3000, 40_000]))]
    new = list(old)
    for _ in range(rng.choice([1, 3, 40, 300])):
        at, roll = rng.randrange(len(new) + 1), rng.random()
        if roll < 0.3:
            new[at:at] = [rng.choice(["inserted\n", f"v{rng.randrange(40)}\n", rng.choice(old)])]
        elif roll < 0.6:
            del new[at:at + rng.randrange(1, 30)]
        elif roll < 0.9:
            new[at:at + 1] = [f"changed {rng.random():.6f}\n"]
        else:  # a block moved
            block = new[at:at + rng.randrange(1, 200)]
            del new[at:at + len(block)]
            to = rng.randrange(len(new) + 1)
            new[to:to] = block
    return "".join(old), "".join(new)


def test_the_diff_of_long_texts_is_byte_for_byte_what_it_was():
    made = [line_diff(*long_edits(seed), "f", limit=200_000) for seed in range(len(LONG_DIFFS_BEFORE))]
    assert [hashlib.sha256(str(diff).encode()).hexdigest()[:16] for diff in made] == LONG_DIFFS_BEFORE


def test_alike_counts_the_items_two_sequences_begin_or_end_with_as_a_loop_would():
    def loop(a, b, most):
        n = 0
        while n < min(len(a), len(b), most) and a[n] == b[n]:
            n += 1
        return n

    rng = random.Random(2)
    for _ in range(5000):
        a, b = ([rng.choice("ab") for _ in range(rng.randrange(20))] for _ in range(2))
        most = rng.randrange(25)
        assert alike(a, b) == alike("".join(a), "".join(b)) == loop(a, b, 99)
        assert alike(a, b, most=most) == loop(a, b, most)
        assert alike(a, b, most=most, end=True) == loop(a[::-1], b[::-1], most)
