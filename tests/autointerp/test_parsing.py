"""Reading small-model replies: numbers, yes/no, word lists and explanations in the
shapes chat models actually produce; None (a recorded failure) when nothing fits."""

from __future__ import annotations

import pytest

from monosemantic.autointerp import parse_explanation, render
from monosemantic.autointerp.clients.openai import retry_after_seconds
from monosemantic.autointerp.scorers import parse_predictions, parse_rating, parse_yes_no


@pytest.mark.parametrize("reply, want", [
    ("2", 2), ("Rating: 3", 3), ("**1**", 1), ("2/3", 2), ("I'd say 3.", 3), ("7 then 1", 1),
    ("no idea", None), ("", None), ("3.5", None), ('{"rating": 0}', 0),
])
def test_parse_rating(reply, want):
    assert parse_rating(reply) == want


@pytest.mark.parametrize("reply, want", [
    ("1", True), ("0", False), ("Yes.", True), ("No, it does not", False), ("Answer: 0", False),
    ("The feature is not active here", False), ("maybe", None),
])
def test_parse_yes_no(reply, want):
    assert parse_yes_no(reply) is want


def test_parse_predictions():
    assert parse_predictions("cat: 10, dog (3)") == {"cat": 10.0, "dog": 3.0}
    assert parse_predictions("- cat\n- mat = 4") == {"cat": 10.0, "mat": 4.0}
    assert parse_predictions("None.") == {}
    assert parse_predictions("   ") is None


def test_parse_explanation():
    assert parse_explanation('**Explanation:** The word "cat" in stories. More text.') == 'The word "cat" in stories.'
    assert parse_explanation("Here is the answer:\nnumbers in code") == "numbers in code"
    assert parse_explanation("...\n42") == ""


def test_render_keeps_leading_space_outside_marks():
    assert render([" the", " cat", " sat"], [False, True, False]) == " the <<cat>> sat"
    assert render(["a", "b", "c"], [True, True, False]) == "<<ab>>c"


def test_retry_after():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert retry_after_seconds("soon") is None


def test_parse_explanation_drops_echoed_marks_and_broken_bytes():
    assert parse_explanation("<<A") == ""
    assert parse_explanation("The word <<cat>> in stories.") == "The word cat in stories."
    assert parse_explanation('The "c" in \ufffd\ufffd\ufffd tokens.') == 'The "c" in  tokens.'
