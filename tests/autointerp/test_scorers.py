"""Every scorer and explainer on a feature whose answer is known (fires exactly on
" cat"), through the real HTTP client and the rule-answering loopback server: the
right explanation scores high, a wrong one low."""

from __future__ import annotations

import asyncio

import pytest
from llm_server import LLMServer
from synthetic import cat_feature

from monosemantic.autointerp import LLMExplainer, TokenExplainer, split_examples
from monosemantic.autointerp.clients import OpenAIClient
from monosemantic.autointerp.scorers import SCORERS

RIGHT, WRONG = 'Fires on the tokens "cat".', 'Fires on the tokens "piano".'
RELATED = 'Fires on the tokens "dog".'  # in the texts, never where the feature fires


@pytest.fixture(scope="module")
def server():
    with LLMServer() as s:
        yield s


def _score(server, name, explanation, **split_kw):
    split = split_examples(cat_feature(), **split_kw)
    client = OpenAIClient(base_url=server.url, model="rules", backoff=0.01)

    async def go():
        try:
            return await SCORERS[name]().score(explanation, split, client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_split_never_scores_what_the_explainer_saw():
    split = split_examples(cat_feature())
    assert split.ok and not split.problems
    assert not {s.context_id for s in split.explain} & {s.context_id for s in split.score}
    levels = {s.level for s in split.score}
    assert levels == {"top", "interval0", "interval1", "interval2", "interval3", "negative"}
    capped = split_examples(cat_feature(), per_level=1, negatives=2)
    assert sorted(s.level for s in capped.score) == sorted([*(levels - {"negative"}), "negative", "negative"])


@pytest.mark.parametrize("name, good, bad", [
    ("rubric", 3.0, 0.0),
    ("detection", 1.0, 0.5),
    ("fuzzing", 1.0, 0.5),
    ("simulation", 0.8, 0.0),
])
def test_scorer_separates_right_from_wrong_explanation(server, name, good, bad):
    right, wrong = _score(server, name, RIGHT), _score(server, name, WRONG)
    assert right.failures == 0 and wrong.failures == 0 and right.n == wrong.n > 10
    assert right.score >= good, right
    assert wrong.score <= bad, wrong


def test_rubric_averages_per_level_and_rates_negatives_apart(server):
    r = _score(server, "rubric", RIGHT)
    assert set(r.details["per_level"]) == {"top", "interval0", "interval1", "interval2", "interval3", "negative"}
    assert r.details["per_level"]["negative"] == 0.0  # rated, but not in the score
    assert r.score == 3.0
    related = _score(server, "rubric", RELATED)  # "related to the context, not the marks": 1 at most
    assert 0.0 < related.score <= 1.0


def test_detection_penalises_an_explanation_that_fires_everywhere(server):
    d = _score(server, "detection", RELATED)  # "dog" is in most texts, negatives included
    assert d.details["tnr"] < 1.0 and d.score < 0.9


def test_unreadable_replies_are_failures_not_crashes(server):
    server.default = "nonumber"
    try:
        r = _score(server, "rubric", RIGHT)
        d = _score(server, "detection", RIGHT)
    finally:
        server.default = "ok"
    assert r.score is None and r.failures == r.n and "error" in r.details
    assert d.score is None and d.failures == d.n


def test_explainers_name_the_token(server):
    split = split_examples(cat_feature())
    assert asyncio.run(TokenExplainer().explain(split.explain)).tokens[0] == "cat"
    client = OpenAIClient(base_url=server.url, model="rules")

    async def go():
        try:
            return await LLMExplainer().explain(split.explain, client)
        finally:
            await client.aclose()

    e = asyncio.run(go())
    assert e.ok and e.text == 'the token "cat".'


def test_llm_explainer_shows_every_activation_level():
    split = split_examples(cat_feature())
    chosen = LLMExplainer(max_examples=8).choose(split.explain)
    assert len(chosen) == 8
    assert [s.level for s in chosen][:4] == ["top"] * 4
    assert {s.level for s in chosen[4:]} == {"interval0", "interval1", "interval2", "interval3"}
