"""Checking a chat-completions reply from a server that is not trusted, before
anything of it is cached or stored: the JSON must parse (without exhausting the
stack), the content must be a string, token counts must be small non-negative
integers, and text that SQLite or UTF-8 cannot hold (lone surrogates, NUL) is
cleaned."""

from __future__ import annotations

import json

from .base import ChatResult

MAX_TOKENS_COUNT = 2**31  # a usage count above this is not a count


class ReplyError(ValueError):
    """The reply is not a usable chat completion (message says which part)."""


def clean_text(text: str) -> str:
    """Lone surrogates -> U+FFFD (they cannot be encoded as UTF-8), NUL removed (it
    truncates C strings and is never part of an explanation)."""
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "")


def _count(usage: dict, name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < MAX_TOKENS_COUNT or value != int(value):
        raise ReplyError(f"usage.{name} is {str(value)[:40]}, not a token count")
    return int(value)


def parse_completion(raw: bytes) -> ChatResult:
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ReplyError("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ReplyError(f"not JSON: {e}") from None
    try:
        text = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ReplyError("no choices[0].message.content") from None
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ReplyError(f"content is a {type(text).__name__}, not a string")
    usage = data.get("usage") or {}
    if not isinstance(usage, dict):
        raise ReplyError("usage is not an object")
    return ChatResult(clean_text(text), _count(usage, "prompt_tokens"), _count(usage, "completion_tokens"))
