"""Labels read whole characters: a stored example whose tokens split a character (the
database gives the continuing tokens "") becomes one sample token per character."""

from __future__ import annotations

import asyncio

from monosemantic.autointerp.examples import _sample
from monosemantic.autointerp.explainers import TokenExplainer
from monosemantic.features.records import Example


def test_sample_joins_split_characters_and_the_label_names_them():
    # "日本" is b"\xe6\x97" b"\xa5" b"\xe6\x9c\xac": the database shows ["日", "", "本"]
    ex = Example(context_id=0, position=2, activation=2.0, start=1, token_ids=[1, 2, 3, 4],
                 acts=[0.0, 0.0, 2.0, 0.0], tokens=[" the", "日", "", "本"])
    s = _sample(ex, "top")
    assert s.tokens == [" the", "日", "本"] and s.acts == [0.0, 2.0, 0.0]  # the peak (on the continuing token) stays on 日
    label = asyncio.run(TokenExplainer().explain([s]))
    assert label.text == 'Fires on the tokens "日".'
