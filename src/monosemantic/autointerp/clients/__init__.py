"""Chat clients for explainers and scorers: an OpenAI-compatible HTTP client and a
local transformers one, both with an on-disk response cache."""

from .base import ChatClient, ChatResult, ClientError, ResponseCache, Usage, cache_key
from .local import LocalClient
from .openai import OpenAIClient, OpenAIConfig

__all__ = ["ChatClient", "ChatResult", "ClientError", "LocalClient", "OpenAIClient", "OpenAIConfig", "ResponseCache", "Usage", "cache_key"]
