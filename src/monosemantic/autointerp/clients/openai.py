"""An OpenAI-compatible chat-completions client (vLLM, llama.cpp server, Ollama,
hosted APIs) over httpx: a concurrency limit, retries with exponential backoff on
429/5xx/timeouts that honour Retry-After, and the on-disk response cache."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from .base import ChatClient, ChatResult, ClientError, ResponseCache, Usage, cache_key

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
FATAL_STATUS = {401, 403, 404}  # wrong key or URL or model: every request would fail


@dataclass
class OpenAIConfig:
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; default $OPENAI_BASE_URL, else api.openai.com
    api_key: str | None = None  # default $OPENAI_API_KEY; local servers accept any
    model: str = "gpt-4o-mini"
    concurrency: int = 8  # requests in flight at once
    timeout: float = 60.0  # seconds per request
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
        if cfg.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {cfg.concurrency}")
        self.cfg = cfg
        self.base_url = (cfg.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
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
                response = await self._http.post(url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            else:
                if response.status_code == 200:
                    try:
                        return _parse_completion(response.json())
                    except (ValueError, KeyError, IndexError, TypeError) as e:
                        # the server answered; asking again would get the same: a failure, not a retry
                        self.usage.failures += 1
                        raise ClientError(f"unreadable reply from {url} ({type(e).__name__}: {e}): {response.text[:200]!r}") from None
                if response.status_code not in RETRY_STATUS:
                    self.usage.failures += 1
                    raise ClientError(f"{url} answered HTTP {response.status_code}: {response.text[:300]}",
                                      fatal=response.status_code in FATAL_STATUS)
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                wait = retry_after_seconds(response.headers.get("retry-after"))
            if attempt == self.cfg.max_retries:
                break
            self.usage.retries += 1
            if wait is None:
                wait = min(self.cfg.max_backoff, self.cfg.backoff * 2**attempt) * (0.5 + random.random() / 2)
            await asyncio.sleep(min(wait, self.cfg.max_backoff))
        self.usage.failures += 1
        raise ClientError(f"{url} failed {self.cfg.max_retries + 1} times, last: {last}")

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._loop = self._http = None


def _parse_completion(data: dict) -> ChatResult:
    text = data["choices"][0]["message"]["content"]
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise TypeError("content is not a string")
    usage = data.get("usage") or {}
    return ChatResult(text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
