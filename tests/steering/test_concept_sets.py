"""The concept catalogue: shipped sets are large enough to measure, record where their
texts come from, and split into halves that never overlap; malformed user files fail
with one line."""

from __future__ import annotations

import json

import pytest

from monosemantic.errors import ConfigError
from monosemantic.steering.concept_sets import KINDS, MIN_TEXTS, Concept, concept_names, default_split, load_concept

SAFETY = {"deception", "flattery", "power_seeking", "bias", "harmful_requests", "security_vulnerabilities", "secrecy"}


def test_every_shipped_concept_is_large_and_licensed():
    names = concept_names()
    assert SAFETY <= set(names), SAFETY - set(names)
    for name in names:
        c = load_concept(name)
        assert len(c.positive) >= MIN_TEXTS and len(c.negative) >= MIN_TEXTS, (name, len(c.positive), len(c.negative))
        assert c.source and c.licence and c.description and c.tokens, name


def test_halves_never_overlap_and_cover_everything():
    for name in concept_names():
        c = load_concept(name)
        train, test = c.halves()
        for side in ("positive", "negative"):
            a, b = getattr(train, side), getattr(test, side)
            assert not set(a) & set(b), name
            assert sorted(a + b) == sorted(getattr(c, side)), name
            assert abs(len(a) - len(b)) <= 2, name          # about half each
        if c.has_kinds():                                   # both kinds in both halves
            for half in (train, test):
                assert set(half.positive_kind) == set(KINDS), name
                assert min(half.positive_kind.count(k) for k in KINDS) >= 10, name


def test_default_split_alternates_within_kind():
    assert default_split(["", "", "", ""]) == ["train", "test", "train", "test"]
    assert default_split(["concrete", "concrete", "abstract", "abstract", "concrete"]) == \
        ["train", "test", "train", "test", "train"]
    c = Concept("x", ["a", "b", "c"], ["d", "e"])            # built in code: the same rule
    assert c.half("train").positive == ["a", "c"] and c.half("test").negative == ["e"]


def _write(tmp_path, obj, name="mine.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


GOOD = {"name": "mine", "tokens": ["x"], "positive": ["p1", {"text": "p2", "kind": "abstract"}, {"text": "p3", "split": "test"}],
        "negative": ["n1", "n2"]}


def test_user_file_by_path(tmp_path):
    c = load_concept(str(_write(tmp_path, GOOD)))
    assert c.name == "mine" and c.positive == ["p1", "p2", "p3"] and c.positive_kind == ["", "abstract", ""]
    assert c.positive_split == ["train", "train", "test"] and c.negative_split == ["train", "test"]


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    ([1, 2], "expected a JSON object"),
    ({**GOOD, "positive": []}, "\"positive\" must be a non-empty list"),
    ({**GOOD, "negative": "n1"}, "\"negative\" must be a non-empty list"),
    ({**GOOD, "positive": ["p1", 3]}, r"positive\[1\]: expected a string"),
    ({**GOOD, "positive": ["p1", {"text": ""}]}, r"positive\[1\]: \"text\" must be a non-empty string"),
    ({**GOOD, "positive": ["p1", {"text": "p2", "kind": "vague"}]}, "kind 'vague' must be one of concrete, abstract"),
    ({**GOOD, "negative": ["n1", {"text": "n2", "split": "dev"}]}, "split 'dev' must be one of train, test"),
    ({**GOOD, "negative": ["n1", {"text": "n2", "colour": "red"}]}, "unknown key"),
    ({**GOOD, "positive": ["p1", "p1"]}, "duplicate text"),
    ({**GOOD, "negative": ["p1", "n2"]}, "both positive and negative"),
    ({**GOOD, "tokens": "x"}, "\"tokens\" must be a list"),
    ({**GOOD, "negative": ["n1"]}, "no negative text in the 'test' half"),
    ({**GOOD, "positives": ["p"]}, "unknown key"),
    ({**GOOD, "positive": ["p" * 3000, "p2"]}, "at most 2000"),
])
def test_malformed_files_fail_in_one_line(tmp_path, bad, message):
    path = _write(tmp_path, bad)
    with pytest.raises(ConfigError, match=message) as e:
        load_concept(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_and_unknown(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_concept(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="unknown concept"):
        load_concept("no-such-concept")
    (tmp_path / "latin1.json").write_bytes(b'{"name": "\xe9"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_concept(tmp_path / "latin1.json")
