"""An OpenAI-compatible chat-completions client (vLLM, llama.cpp server, Ollama,
hosted APIs) over httpx: a concurrency limit, retries with exponential backoff on
429/5xx/timeouts that honour Retry-After, and the on-disk response cache.

The server is not trusted: the timeout covers the whole request (a body dripped a
byte at a time cannot hold a worker), a reply larger than `max_reply_bytes` is
dropped unread, and every field is checked (replies.py) before it is cached."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import random
import math
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from .base import ChatClient, ChatResult, ClientError, ResponseCache, Usage, cache_key
from .replies import ReplyError, parse_completion

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
FATAL_STATUS = {401, 403, 404}  # wrong key or URL or model: every request would fail


@dataclass
class OpenAIConfig:
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; default $OPENAI_BASE_URL, else api.openai.com
    api_key: str | None = None  # default $OPENAI_API_KEY; local servers accept any
    model: str = "gpt-4o-mini"
    concurrency: int = 8  # requests in flight at once
    timeout: float = 60.0  # seconds per request, from sending it to the last byte of the reply
    max_reply_bytes: int = 1_000_000  # a chat reply of a few sentences is ~1 kB; anything this large is not one
    max_retries: int = 6
    backoff: float = 1.0  # first wait in seconds, doubled each retry (with jitter)
    max_backoff: float = 60.0
    cache: str | Path | None = None  # SQLite file; None: no cache


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@functools.lru_cache(maxsize=1)
def _ssl_context():
    """One default TLS context for every connection pool (building one loads the CA
    bundle, ~0.5 s)."""
    import httpx

    return httpx.create_ssl_context()


class OpenAIClient(ChatClient):
    def __init__(self, cfg: OpenAIConfig | None = None, **overrides):
        try:
            import httpx
        except ImportError as e:  # pragma: no cover
            raise ConfigError("the OpenAI client needs httpx: pip install httpx") from e
        cfg = cfg or OpenAIConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        self.cfg = cfg
        self.base_url = (cfg.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        _validate(cfg, self.base_url)
        self.api_key = cfg.api_key or os.environ.get("OPENAI_API_KEY") or "none"
        self.name = f"openai:{cfg.model}"
        self.usage = Usage()
        self.cache = ResponseCache(cfg.cache) if cfg.cache else None
        self._httpx = httpx
        self._loop = self._sem = self._http = None

    def _bind(self) -> None:
        # The semaphore and the connection pool belong to one event loop; each
        # asyncio.run (one per explain_run) gets its own.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._sem = loop, asyncio.Semaphore(self.cfg.concurrency)
            self._http = self._httpx.AsyncClient(timeout=self._httpx.Timeout(self.cfg.timeout), verify=_ssl_context(),
                                                 headers={"Authorization": f"Bearer {self.api_key}"})

    async def chat(self, messages: list[dict], max_tokens: int = 64, temperature: float = 0.0,
                   choices: list[str] | None = None) -> ChatResult:  # choices: generated and parsed
        params = {"max_tokens": max_tokens, "temperature": temperature}
        key = cache_key(self.cfg.model, messages, params)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.cache_hits += 1
            return hit
        body = {"model": self.cfg.model, "messages": messages, **params}
        self._bind()
        async with self._sem:
            result = await self._post(body)
        self.usage.prompt_tokens += result.prompt_tokens
        self.usage.completion_tokens += result.completion_tokens
        if self.cache is not None:
            self.cache.put(key, self.cfg.model, result)
        return result

    async def _post(self, body: dict) -> ChatResult:
        httpx = self._httpx
        url = f"{self.base_url}/chat/completions"
        last = "no attempt"
        for attempt in range(self.cfg.max_retries + 1):
            wait = None
            self.usage.requests += 1
            try:
                # wait_for bounds the whole exchange; httpx's own timeout is per read
                status, headers, raw = await asyncio.wait_for(self._exchange(url, body), self.cfg.timeout)
            except (asyncio.TimeoutError, httpx.TimeoutException):
                last = f"Timeout: no complete reply within {self.cfg.timeout:g} s"
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            except ReplyError as e:  # too large: asking again would get the same
                self.usage.failures += 1
                raise ClientError(f"reply from {url} {e}") from None
            else:
                text = _clip(raw)
                if status == 200:
                    try:
                        return parse_completion(raw)
                    except ReplyError as e:
                        # the server answered; asking again would get the same: a failure, not a retry
                        self.usage.failures += 1
                        raise ClientError(f"unreadable reply from {url} ({e}): {text[:200]!r}") from None
                if status not in RETRY_STATUS:
                    self.usage.failures += 1
                    raise ClientError(f"{url} answered HTTP {status}: {text[:300]!r}", fatal=status in FATAL_STATUS)
                last = f"HTTP {status}: {text[:200]!r}"
                wait = retry_after_seconds(headers.get("retry-after"))
            if attempt == self.cfg.max_retries:
                break
            self.usage.retries += 1
            if wait is None:
                wait = min(self.cfg.max_backoff, self.cfg.backoff * 2**attempt) * (0.5 + random.random() / 2)
            await asyncio.sleep(min(wait, self.cfg.max_backoff))
        self.usage.failures += 1
        raise ClientError(f"{url} failed {self.cfg.max_retries + 1} times, last: {last}")

    async def _exchange(self, url: str, body: dict) -> tuple[int, dict, bytes]:
        """One POST, the reply read in chunks up to max_reply_bytes."""
        limit = self.cfg.max_reply_bytes
        async with self._http.stream("POST", url, json=body) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ReplyError(f"is {int(declared):,} bytes, larger than the {limit:,}-byte limit")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ReplyError(f"is larger than the {limit:,}-byte limit")
                chunks.append(chunk)
            return response.status_code, dict(response.headers), b"".join(chunks)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._loop = self._http = None


def _clip(raw: bytes) -> str:
    return raw[:300].decode("utf-8", "replace")


def _validate(cfg: OpenAIConfig, base_url: str) -> None:
    if cfg.concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {cfg.concurrency}")
    if not (isinstance(cfg.timeout, (int, float)) and math.isfinite(cfg.timeout) and cfg.timeout > 0):
        raise ConfigError(f"--timeout must be a positive number of seconds, got {cfg.timeout}")
    if cfg.max_retries < 0:
        raise ConfigError(f"max retries must be 0 or more, got {cfg.max_retries}")
    if cfg.max_reply_bytes < 1024:
        raise ConfigError(f"max_reply_bytes must be at least 1024, got {cfg.max_reply_bytes}")
    url = urllib.parse.urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname or any(c.isspace() for c in base_url):
        raise ConfigError(f"--base-url {base_url!r} is not an http(s) URL: use e.g. http://127.0.0.1:8000/v1")
