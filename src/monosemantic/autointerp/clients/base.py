"""What every chat client shares: the reply type, token accounting, and the on-disk
response cache (SQLite keyed by a hash of model + messages + sampling parameters), so
a re-run costs nothing and an interrupted run resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import MonosemanticError


class ClientError(MonosemanticError):
    """One request failed: the server kept failing after every retry, or its reply
    was unreadable (recorded as a failure, the batch goes on). `fatal`: every request
    would fail (bad URL, key or model name), so the run stops."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@dataclass
class Usage:
    """Counts for one client over one run (the CLI prints them)."""

    requests: int = 0  # HTTP requests / generate calls actually made (retries included)
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0  # calls that gave up after every retry
    prompt_tokens: int = 0  # of fresh (not cached) replies
    completion_tokens: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def cache_key(model: str, messages: list[dict], params: dict) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """Replies by key; one row per finished request, committed as it arrives (a kill
    loses at most the requests in flight)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        with self.conn:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, text TEXT NOT NULL, "
                              "prompt_tokens INTEGER, completion_tokens INTEGER, created TEXT DEFAULT (datetime('now')))")

    def get(self, key: str) -> ChatResult | None:
        with self._lock:
            row = self.conn.execute("SELECT text, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else ChatResult(row[0], row[1] or 0, row[2] or 0, cached=True)

    def put(self, key: str, model: str, result: ChatResult) -> None:
        with self._lock, self.conn:
            self.conn.execute("INSERT OR REPLACE INTO responses (key, model, text, prompt_tokens, completion_tokens) VALUES (?,?,?,?,?)",
                              (key, model, result.text, result.prompt_tokens, result.completion_tokens))

    def __len__(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class ChatClient:
    """Interface: `await client.chat(messages, max_tokens=..)` -> ChatResult. `name`
    identifies the model in cache keys and in the scores' details. `choices`: the
    valid answers ("0".."3"); a client that can read next-token scores answers with the
    likeliest one (constrained), others generate and ignore it."""

    name: str = "client"
    usage: Usage

    async def chat(self, messages: list[dict], max_tokens: int = 64, temperature: float = 0.0,
                   choices: list[str] | None = None) -> ChatResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass
