"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1: retries on
429 (honouring Retry-After) and 500, timeouts, unreadable replies as failures,
fatal errors, the concurrency limit, token counts and the on-disk cache."""

from __future__ import annotations

import asyncio
import time

import pytest
from llm_server import LLMServer

from monosemantic.autointerp.clients import ClientError, OpenAIClient, ResponseCache

ASK = [{"role": "system", "content": "You check explanations: would fire somewhere in the text."},
       {"role": "user", "content": 'Explanation: the token "cat"\nText: the cat sat\nDoes it fire?'}]


def _ask(client, n: int = 1, messages=ASK):
    async def go():
        try:
            return await asyncio.gather(*(client.chat(messages, max_tokens=8 + i) for i in range(n)), return_exceptions=True)
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture
def server():
    with LLMServer() as s:
        yield s


def test_answers_and_counts_tokens(server):
    c = OpenAIClient(base_url=server.url, model="rules", api_key="k")
    replies = _ask(c, 3)
    assert [r.text for r in replies] == ["1"] * 3
    assert c.usage.requests == 3 and c.usage.retries == 0
    assert c.usage.prompt_tokens == server.usage["prompt_tokens"] > 0
    assert c.usage.completion_tokens == server.usage["completion_tokens"] == 3


def test_429_waits_for_retry_after(server):
    server.script = ["429"]
    c = OpenAIClient(base_url=server.url, model="rules", backoff=0.01)
    start = time.perf_counter()
    (reply,) = _ask(c)
    assert reply.text == "1" and time.perf_counter() - start >= 0.95  # Retry-After: 1, not the 0.01 s backoff
    assert server.requests == 2 and c.usage.retries == 1 and c.usage.failures == 0


def test_500s_are_retried_then_given_up(server):
    server.script = ["500", "500"]
    c = OpenAIClient(base_url=server.url, model="rules", backoff=0.01)
    assert _ask(c)[0].text == "1" and c.usage.requests == 3 and c.usage.retries == 2
    server.default = "500"
    c = OpenAIClient(base_url=server.url, model="rules", backoff=0.01, max_retries=2)
    (err,) = _ask(c)
    assert isinstance(err, ClientError) and not err.fatal and "HTTP 500" in str(err)
    assert c.usage.requests == 3 and c.usage.failures == 1


def test_slow_reply_times_out_and_is_retried(server):
    server.slow = 1.5
    server.script = ["slow"]
    c = OpenAIClient(base_url=server.url, model="rules", timeout=0.3, backoff=0.01)
    assert _ask(c)[0].text == "1" and c.usage.retries == 1
    server.default = "slow"
    c = OpenAIClient(base_url=server.url, model="rules", timeout=0.3, backoff=0.01, max_retries=1)
    (err,) = _ask(c)
    assert isinstance(err, ClientError) and "Timeout" in str(err) and c.usage.failures == 1


def test_unreadable_reply_is_a_failure_without_retries(server):
    server.script = ["notjson"]
    c = OpenAIClient(base_url=server.url, model="rules", backoff=0.01)
    (err,) = _ask(c)
    assert isinstance(err, ClientError) and not err.fatal and "unreadable reply" in str(err)
    assert server.requests == 1 and c.usage.failures == 1


def test_wrong_key_is_fatal(server):
    server.script = ["401"]
    c = OpenAIClient(base_url=server.url, model="rules", backoff=0.01)
    (err,) = _ask(c)
    assert isinstance(err, ClientError) and err.fatal and "401" in str(err) and server.requests == 1


def test_unreachable_server_is_a_failure(server):
    url = server.url
    server.__exit__()
    c = OpenAIClient(base_url=url, model="rules", backoff=0.01, max_retries=1)
    (err,) = _ask(c)
    assert isinstance(err, ClientError) and c.usage.requests == 2


def test_concurrency_limit(server):
    server.delay = 0.15
    c = OpenAIClient(base_url=server.url, model="rules", concurrency=3)
    replies = _ask(c, 12)
    assert all(r.text == "1" for r in replies)
    assert server.max_in_flight == 3  # reached, never exceeded


def test_cache_makes_a_rerun_free(server, tmp_path):
    cache = tmp_path / "cache.sqlite"
    first = _ask(OpenAIClient(base_url=server.url, model="rules", cache=cache), 4)
    asked = server.requests
    again = OpenAIClient(base_url=server.url, model="rules", cache=cache)
    second = _ask(again, 4)
    assert [r.text for r in second] == [r.text for r in first] and all(r.cached for r in second)
    assert server.requests == asked == 4 and again.usage.cache_hits == 4 and again.usage.requests == 0
    assert len(ResponseCache(cache)) == 4
    other_model = OpenAIClient(base_url=server.url, model="other", cache=cache)
    _ask(other_model, 1)
    assert server.requests == 5  # the model is part of the key


def test_base_url_and_key_from_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    c = OpenAIClient(model="rules")
    assert c.base_url == server.url and c.api_key == "sk-test"
    assert _ask(c)[0].text == "1"


# --- hostile or broken servers: each is one failure (or a cleaned reply), never a crash --
@pytest.mark.parametrize("action, expected", [
    ("surrogate", "Fires on \ufffd x."),   # a lone surrogate cannot be stored as UTF-8: replaced
    ("nul", "Fires on cats."),             # NUL removed
])
def test_unencodable_text_is_cleaned_before_caching(action, expected, server, tmp_path):
    server.script = [action]
    cache = tmp_path / "cache.sqlite"
    (reply,) = _ask(OpenAIClient(base_url=server.url, model="rules", cache=cache))
    assert not isinstance(reply, Exception), reply
    assert reply.text == expected
    (again,) = _ask(OpenAIClient(base_url=server.url, model="rules", cache=cache))
    assert again.cached and again.text == expected


@pytest.mark.parametrize("action, message", [
    ("infinite_tokens", "prompt_tokens"), ("nested", "unreadable reply"), ("huge", "larger than"),
])
def test_invalid_replies_are_one_failure(action, message, server, tmp_path):
    server.script = [action]
    c = OpenAIClient(base_url=server.url, model="rules", backoff=0.01, cache=tmp_path / "cache.sqlite", max_reply_bytes=1_000_000)
    (err,) = _ask(c)
    assert isinstance(err, ClientError) and message in str(err) and "\n" not in str(err), err
    assert c.usage.failures == 1 and len(ResponseCache(tmp_path / "cache.sqlite")) == 0  # nothing invalid cached


def test_dripping_body_hits_the_total_timeout(server):
    server.script = ["drip"] * 2
    c = OpenAIClient(base_url=server.url, model="rules", timeout=1.0, backoff=0.01, max_retries=1)
    start = time.perf_counter()
    (err,) = _ask(c)
    assert isinstance(err, ClientError) and "Timeout" in str(err), err
    assert time.perf_counter() - start < 4.0  # two attempts of 1 s each, not ~60 s of bytes


@pytest.mark.parametrize("overrides, message", [
    ({"timeout": -1}, "--timeout"), ({"timeout": float("nan")}, "--timeout"), ({"base_url": "not a url"}, "--base-url"),
    ({"base_url": "ftp://host/v1"}, "--base-url"), ({"max_retries": -1}, "retries"),
])
def test_options_are_validated(overrides, message):
    from monosemantic.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        OpenAIClient(model="rules", **overrides)
