"""A local transformers chat client: the embedded SmolLM2-135M-Instruct by default
(weak, but offline), greedy so the same prompt always gets the same reply, and cached
on disk like the HTTP client. Asked with `choices` (the scorers' digits), it answers
with the likeliest choice from one forward pass instead of generating."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import torch

from ...models import load_model
from .base import ChatClient, ChatResult, ResponseCache, Usage, cache_key


class LocalClient(ChatClient):
    def __init__(self, model: str = "embedded", cache: str | Path | None = None, lm=None):
        self.spec = model
        self.name = f"local:{model}"
        self.usage = Usage()
        self.cache = ResponseCache(cache) if cache else None
        self._lm = lm
        self._lock = threading.Lock()  # one generate at a time: the CPU is the limit

    def _model(self):
        if self._lm is None:
            self._lm = load_model(self.spec, dtype="float32")
        return self._lm

    def _encode(self, messages: list[dict]):
        ids = self._model().tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return ids["input_ids"], ids.get("attention_mask")

    def _generate(self, messages: list[dict], max_tokens: int) -> ChatResult:
        with self._lock:
            lm = self._model()
            tok = lm.tokenizer
            input_ids, mask = self._encode(messages)
            with torch.no_grad():
                out = lm.model.generate(input_ids, attention_mask=mask, max_new_tokens=max_tokens, do_sample=False,
                                        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
            new = out[0, input_ids.shape[1]:]
            self.usage.requests += 1
            return ChatResult(tok.decode(new, skip_special_tokens=True), int(input_ids.shape[1]), int(new.shape[0]))

    def _choose(self, messages: list[dict], choices: list[str]) -> ChatResult:
        """The choice whose first token the model finds likeliest next: one forward
        pass, and always a valid answer (a 135M model often is not)."""

        with self._lock:
            lm = self._model()
            firsts = [lm.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in choices]
            if len(set(firsts)) < len(choices):
                raise ValueError(f"choices {choices} share a first token")
            input_ids, mask = self._encode(messages)
            with torch.no_grad():
                logits = lm.model(input_ids, attention_mask=mask).logits[0, -1]
            self.usage.requests += 1
            return ChatResult(choices[int(torch.argmax(logits[firsts]))], int(input_ids.shape[1]), 1)

    async def chat(self, messages: list[dict], max_tokens: int = 64, temperature: float = 0.0,
                   choices: list[str] | None = None) -> ChatResult:
        params = {"max_tokens": max_tokens, "temperature": 0.0}  # always greedy
        if choices:
            params["choices"] = list(choices)
        key = cache_key(self.name, messages, params)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.cache_hits += 1
            return hit
        if choices:
            result = await asyncio.to_thread(self._choose, messages, list(choices))
        else:
            result = await asyncio.to_thread(self._generate, messages, max_tokens)
        self.usage.prompt_tokens += result.prompt_tokens
        self.usage.completion_tokens += result.completion_tokens
        if self.cache is not None:
            self.cache.put(key, self.name, result)
        return result
