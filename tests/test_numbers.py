"""One formatter and one sign convention for every figure a person reads."""

from __future__ import annotations

import pathlib
import re

from overnight.core.numbers import fmt, fmt_apart, gain_pct, gain_text, scores_line, signed


def test_plain_digits_for_ordinary_magnitudes():
    assert fmt(-102983.3176) == "-102983.3"  # a loan's figure, not -1.03e+05
    assert fmt(0.7071067811865476) == "0.7071"
    assert fmt(12.345678) == "12.3457"
    assert fmt(94.0) == "94" and fmt(0.5) == "0.5" and fmt(-0.0) == "0" and fmt(None) == "-"
    assert fmt(0.000123456) == "0.0001235"


def test_e_notation_only_for_very_large_or_tiny_values():
    assert fmt(1e10) == "1e+10" and fmt(3e-6) == "3e-06"
    assert "e" not in fmt(1234567.8)


def test_two_candidates_are_told_apart():
    assert fmt_apart(-129800.21, -129800.24) == ("-129800.21", "-129800.24")
    assert fmt_apart(0.12345671, 0.12345674) == ("0.12345671", "0.12345674")
    assert fmt_apart(94, 48) == ("94", "48")


def test_a_gain_is_positive_when_better_for_the_goal():
    assert gain_text(94, 48, "minimize") == "+48.9%" and gain_pct(94, 48, "minimize") > 0
    assert gain_text(94, 48, "maximize") == "-48.9%"
    assert gain_text(0, 1, "maximize") == "+1"  # no % of nothing
    assert scores_line(94, 48, "minimize") == "baseline 94 -> best 48 (gain +48.9%)"
    assert signed(3) == "+3" and signed(-0.5) == "-0.5" and signed(0) == "0"


def test_no_module_formats_scores_on_its_own():
    """Every caller goes through core/numbers.py: no second `def fmt` and no ad-hoc % of a baseline."""
    root = pathlib.Path(__file__).resolve().parent.parent
    sources = [p for d in ("cli", "tui", "night", "ops", "core", "plugins") for p in (root / d).rglob("*.py")]
    for path in sources:
        text = path.read_text()
        assert not re.search(r"^def fmt\(", text, re.M) or path.name == "numbers.py", path
        assert not re.search(r"/ abs\([^)]*\) \* 100", text) or path.name == "numbers.py", path
