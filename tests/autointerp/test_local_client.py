"""The local transformers client on the tiny random Llama: greedy generation, the
constrained choice the scorers use, token counts and the on-disk cache."""

from __future__ import annotations

import asyncio

from monosemantic.autointerp.clients import LocalClient
from monosemantic.autointerp.scorers import rubric

ASK = rubric.prompt('Fires on the tokens "cat".', "the <<cat>> sat")


def test_generate_choose_and_cache(tiny_llama, tmp_path):
    c = LocalClient("tiny", cache=tmp_path / "cache.sqlite", lm=tiny_llama)
    gen = asyncio.run(c.chat(ASK, max_tokens=5))
    assert gen.completion_tokens <= 5 and gen.prompt_tokens > 50 and not gen.cached
    assert asyncio.run(c.chat(ASK, max_tokens=5)).text == gen.text  # greedy: the same reply
    choice = asyncio.run(c.chat(ASK, max_tokens=5, choices=["0", "1", "2", "3"]))
    assert choice.text in {"0", "1", "2", "3"} and choice.completion_tokens == 1
    assert c.usage.requests == 2 and c.usage.cache_hits == 1
    again = LocalClient("tiny", cache=tmp_path / "cache.sqlite", lm=tiny_llama)
    assert asyncio.run(again.chat(ASK, max_tokens=5, choices=["0", "1", "2", "3"])).text == choice.text
    assert again.usage.requests == 0 and again.usage.cache_hits == 1
