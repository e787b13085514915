"""The `text-stats` metric: counts and readability of a known text, as the objective and as guards."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write
from tests.data.core.kit import experiments, no_traceback, rows

PANGRAM = "The quick brown fox jumps over the lazy dog.\n"


def flesch(words, sentences, syllables):
    """The published formulas, for the expected values below."""
    return (206.835 - 1.015 * words / sentences - 84.6 * syllables / words,
            0.39 * words / sentences + 11.8 * syllables / words - 15.59)


def test_the_figures_of_a_known_text():
    from overnight.plugins.text_stats import stats

    s = stats(PANGRAM)
    # 9 words, 1 sentence; o-ver and la-zy have two syllables, the rest one: 11.
    assert (s["words"], s["sentences"], s["syllables"], s["characters"]) == (9, 1, 11, 44)
    ease, grade = flesch(9, 1, 11)
    assert s["reading_ease"] == pytest.approx(ease, abs=1e-4) and s["reading_ease"] == pytest.approx(94.3)
    assert s["grade_level"] == pytest.approx(grade, abs=1e-4)

    two = stats("It was late. We went home! Did you?\n\nThe end")
    assert (two["words"], two["sentences"]) == (10, 4)


def test_syllables_by_spelling():
    from overnight.plugins.text_stats import syllable_count

    known = {"make": 1, "table": 2, "jumped": 1, "wanted": 2, "boxes": 2, "makes": 1, "agree": 2, "beautiful": 3,
             "banana": 3, "simple": 2, "education": 4, "queue": 1, "the": 1, "played": 1, "don't": 1, "42": 1}
    assert {w: syllable_count(w) for w in known} == known


def test_syllables_the_spelling_rules_miss_come_from_the_hyphenation_dictionary():
    from overnight.plugins.text_stats import by_spelling, syllable_count

    # Vowel groups merge i-ssue's u-e, pe-ri-od's i-o, go-ing's o-i; pyphen's en_US patterns split them.
    known = {"issue": 2, "period": 3, "going": 2, "previous": 3, "examples": 3, "situation": 4, "samples": 2}
    assert {w: syllable_count(w) for w in known} == known
    assert all(by_spelling(w) < n for w, n in known.items())  # the rules alone count one fewer


def test_banned_and_required_words_match_whole_words_and_phrases():
    from overnight.plugins.text_stats import stats

    text = "Act now! Our FREE offer: free shipping, freely given. Reply to claim your refund."
    s = stats(text, banned=["free", "act now"], required=["refund", "unsubscribe", "reply"])
    assert s["banned"] == 3  # FREE, free, act now (not "freely")
    assert (s["required"], s["missing_required"]) == (2, 1)
    assert s["required_missing"] == ["unsubscribe"]
    strict = stats(text, banned=["free"], case_sensitive=True)
    assert strict["banned"] == 1


RECIPE = """
[recipe]
name = "notice"

[surface]
kind = "text"
path = "notice.txt"

[metric]
kind = "text-stats"
stat = "reading_ease"

{guards}

[agent]
kind = "scripted"
file = "proposals.jsonl"
"""

NOTICE = "Notwithstanding unforeseen circumstances, reimbursement applications necessitate documentation. Request your refund.\n"


def recipe(workspace, proposals=(), guards="", metric=None, notice=NOTICE):
    text = RECIPE.format(guards=guards)
    if metric:
        text = text.replace('kind = "text-stats"\nstat = "reading_ease"', metric)
    return write(workspace / "notice", {
        "recipe.toml": text,
        "notice.txt": notice,
        "proposals.jsonl": "".join(json.dumps({"view": v, "rationale": f"try {i}"}) + "\n" for i, v in enumerate(proposals, 1)),
    })


def db(workspace):
    return workspace / ".overnight" / "overnight.db"


def test_plainer_words_are_kept_and_the_trace_lists_every_figure(workspace, cli):
    from overnight.plugins.text_stats import stats

    plain = "If you need your money back, ask for a refund. Send us the form.\n"
    folder = recipe(workspace, [plain])
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert [e["status"] for e in exps] == ["baseline", "keep"]
    assert exps[0]["score"] == pytest.approx(stats(NOTICE)["reading_ease"])
    s = stats(plain)
    assert exps[1]["score"] == pytest.approx(flesch(s["words"], s["sentences"], s["syllables"])[0], abs=1e-3)
    shown = cli("show", "1")
    assert f"words {s['words']} characters {s['characters']} sentences 2" in shown.output
    assert "reading_ease" in shown.output and "grade_level" in shown.output


def test_a_length_guard_refuses_a_better_but_longer_text(workspace, cli):
    long_plain = "If you need your money back, ask for a refund. Send us the form. We will pay you back soon.\n"
    short_plain = "Want your money back? Ask for a refund.\n"
    guards = '[[guards]]\nkind = "text-stats"\nstat = "words"\nmax = 12\n'
    folder = recipe(workspace, [long_plain, short_plain], guards=guards)
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert [e["status"] for e in exps] == ["baseline", "guard_failed", "keep"]
    assert exps[1]["reason"] == "guard text-stats = 20, above its max 12"


def test_every_required_word_must_stay(workspace, cli):
    guards = ('[[guards]]\nkind = "text-stats"\nstat = "missing_required"\nrequired = ["refund"]\nmax = 0\nlabel = "required words"\n\n'
              '[[guards]]\nkind = "text-stats"\nstat = "banned"\nbanned = ["free"]\nmax = 0\n')
    folder = recipe(workspace, ["Ask us for your money back.\n", "Get it back free. Ask for a refund.\n",
                                "Ask us for a refund.\n"], guards=guards)
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert [e["status"] for e in exps] == ["baseline", "guard_failed", "guard_failed", "keep"]
    assert exps[1]["reason"] == "guard required words = 1, above its max 0"
    assert exps[2]["reason"] == "guard text-stats = 1, above its max 0"


def test_an_empty_text_has_no_reading_ease(workspace, cli):
    folder = recipe(workspace, ["\n"])
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    e = experiments(db(workspace))[1]
    assert e["status"] == "crash" and e["reason"] == "reading_ease is undefined for a text with no words"


# -- bad input ---------------------------------------------------------------------------------


def refused(workspace, cli, folder, *phrases):
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0, result.output
    assert no_traceback(result.output)
    for phrase in phrases:
        assert phrase in result.output, result.output
    assert (folder / "notice.txt").read_text() == NOTICE
    assert not db(workspace).exists() or not rows(db(workspace), "select id from runs")


def test_counting_banned_words_without_a_list(workspace, cli):
    folder = recipe(workspace, metric='kind = "text-stats"\nstat = "banned"\ngoal = "minimize"')
    refused(workspace, cli, folder, "stat = 'banned' but no 'banned' list of words")


def test_validate_reports_what_run_would_refuse(workspace, cli):
    folder = recipe(workspace, metric='kind = "text-stats"\nstat = "banned"\ngoal = "minimize"')
    result = cli("recipes", "validate", folder)
    assert result.exit_code == 2 and "[metric]: The text-stats metric has stat = 'banned' but no 'banned' list" in result.output


def test_an_unknown_stat(workspace, cli):
    folder = recipe(workspace, metric='kind = "text-stats"\nstat = "wordcount"')
    refused(workspace, cli, folder, "[metric] stat", "must be one of", "'words'")


def test_a_required_list_that_is_not_words(workspace, cli):
    folder = recipe(workspace, metric='kind = "text-stats"\nstat = "required"\nrequired = ["refund", 3]')
    refused(workspace, cli, folder, "'required' list must hold words", "not 3")


def test_a_file_that_is_not_in_the_work_folder(workspace, cli):
    folder = recipe(workspace, metric='kind = "text-stats"\nstat = "words"\nfile = "missing.txt"')
    result = cli("run", folder, "--yes")
    assert result.exit_code != 0 and no_traceback(result.output)
    assert "The baseline could not be measured (crash): text-stats found no file missing.txt in the work folder" in result.output
    assert rows(db(workspace), "select status from runs") == [{"status": "failed"}]
    assert (folder / "notice.txt").read_text() == NOTICE


# -- on an email surface: what recipients read ---------------------------------------------------

BILLING = """
[recipe]
name = "billing"

[surface]
kind = "email"
path = "email.txt"
recipients = "people.csv"
subject = "Payment {{ number }}"

[metric]
kind = "text-stats"
stat = "words"
goal = "minimize"

[[guards]]
kind = "text-stats"
stat = "missing_required"
required = ["invoice"]
max = 0
label = "says invoice"

[[guards]]
kind = "text-stats"
stat = "banned"
banned = ["overdue"]
max = 0
label = "no overdue"

[[guards]]
kind = "text-stats"
stat = "placeholders"
max = 0
label = "stand-ins"

[agent]
kind = "scripted"
file = "proposals.jsonl"
"""
PEOPLE = ("name,email,number,invoice_url,note\n"
          "Ada,ada@example.com,A-1,https://pay.example.com/a1,thanks\n"
          "Grace,grace@example.org,G-7,https://pay.example.com/g7,your payment is overdue\n")


def billing(workspace, proposals):
    return write(workspace / "billing", {
        "recipe.toml": BILLING,
        "email.txt": "Hi {{ name }}, {{ note }}. Your invoice is ready: {{ invoice_url }}\n",
        "people.csv": PEOPLE,
        "proposals.jsonl": "".join(json.dumps({"view": v, "rationale": f"try {i}"}) + "\n" for i, v in enumerate(proposals, 1)),
    })


def test_on_an_email_surface_it_measures_every_rendered_email_not_the_template(workspace, cli):
    folder = billing(workspace, [
        "Hi {{ name }}, pay here: {{ invoice_url }}\n",              # "invoice" only in a placeholder's name
        "Hi {{ name }}, your invoice is here: {{ invoice_url }}\n",  # clean and shorter: kept
        "{{ note }}. Invoice: {{ invoice_url }}\n",                  # shorter, but Grace's note says "overdue"
        "Your invoice for [Product]: {{ invoice_url }}\n",           # shorter, but a stand-in is left in
    ])
    # The baseline's note makes Grace's email say "overdue", which is only in her row, not the template.
    result = cli("run", folder, "--yes")
    assert result.exit_code == 0, result.output
    exps = experiments(db(workspace))
    assert [e["status"] for e in exps] == ["baseline", "guard_failed", "keep", "guard_failed", "guard_failed"]
    assert "guard no overdue" in exps[0]["reason"]  # the baseline already fails it, for Grace
    assert exps[1]["reason"] == "guard says invoice = 1, above its max 0"
    assert exps[3]["reason"] == "guard no overdue = 1, above its max 0"
    assert exps[4]["reason"] == "guard stand-ins = 1, above its max 0"
    # The value is the longest email's words, subject included.
    from overnight.plugins.text_stats import stats

    longest = max(stats(f"Payment {n}\n\nHi {name}, your invoice is here: https://pay.example.com/{n.lower().replace('-', '')}\n")["words"]
                  for name, n in (("Ada", "A-1"), ("Grace", "G-7")))
    assert exps[2]["score"] == longest
    shown = cli("show", "1:2")
    assert f"words {longest}: the worst of 2 emails (recipient 1 (ada@example.com))" in shown.output
    assert f"recipient 2 (grace@example.org): words {longest}" in shown.output


def test_the_emails_key_takes_the_mean_min_or_max(tmp_path):
    from overnight.core.contracts import MeasureRequest
    from overnight.plugins.email import EmailSurface
    from overnight.plugins.text_stats import TextStatsMetric

    write(tmp_path, {"email.txt": "Hi {{ name }}, {{ note }}.\n", "people.csv": PEOPLE})
    surface = EmailSurface({"path": "email.txt", "recipients": "people.csv"}, tmp_path)
    values = {}
    for how in ("worst", "mean", "min", "max"):
        metric = TextStatsMetric({"stat": "words", "banned": [], "required": [], "case_sensitive": False,
                                  "file": None, "emails": how}, tmp_path)
        metric.prepare(surface)
        values[how] = metric.measure(tmp_path / "nowhere", tmp_path, MeasureRequest(10, view=surface.read())).value
    # "Hi Ada, thanks." has 3 words; "Hi Grace, your payment is overdue." has 6: the worst is the longest.
    assert values == {"worst": 6, "mean": 4.5, "min": 3, "max": 6}
    metric = TextStatsMetric({"stat": "reading_ease", "banned": [], "required": [], "case_sensitive": False,
                              "file": None, "emails": "worst"}, tmp_path)
    metric.prepare(surface)
    worst = metric.measure(tmp_path / "nowhere", tmp_path, MeasureRequest(10, view=surface.read())).value
    from overnight.plugins.text_stats import stats

    eases = [stats(f"Hi {n}, {note}.\n")["reading_ease"] for n, note in (("Ada", "thanks"),
                                                                         ("Grace", "your payment is overdue"))]
    assert worst == pytest.approx(min(eases))  # the hardest to read


def test_stand_ins_are_counted_but_links_and_citations_are_not():
    from overnight.plugins.text_stats import stand_ins, stats

    text = "Thanks for trying [Product Name]. Tick [x] or [ ]. See [our guide](https://x.example) and [1].\n"
    assert stand_ins(text) == ["[Product Name]", "[x]", "[ ]"]
    assert stats(text)["placeholders"] == 3
    assert stats("Thanks, [Sender Name] and the [Sender Name] team\n")["placeholders"] == 2


def test_a_placeholder_name_is_not_the_word_it_contains():
    from overnight.plugins.text_stats import stats

    assert stats("Pay here: {{ invoice_url }}", required=["invoice"])["missing_required"] == 1
    assert stats("Your invoice: {{ invoice_url }}", required=["invoice"])["missing_required"] == 0
