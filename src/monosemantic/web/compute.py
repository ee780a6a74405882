"""The two requests that run the model: prompt inspection and steered generation.

Steered and unsteered completions decode together as one batch of two rows (row 1
steered, row 0 not), one token per step, so both columns stream at the same pace. Each
step takes the model lock on its own: a long generation never blocks the prompt
inspector for more than one forward, and the steering hook exists only inside the lock.
Sampling draws one uniform number per step and inverts both rows' CDFs with it
(common random numbers): where steering does not change the distribution the two
completions stay identical, so every difference is the intervention's."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..errors import ConfigError
from ..features.prompt import top_for_prompt
from ..steering.generate import check_length, encode_prompt
from ..steering.interventions import check_compatible, resolve, steering_fn
from .state import RunState


@dataclass
class TokenFeatures:
    position: int
    token: str
    features: list[tuple[int, float]]  # strongest first


@dataclass
class Inspection:
    tokens: list[TokenFeatures]          # position 0 (the BOS-like sink) left out
    top: list[tuple[int, float, int]]    # (feature, max activation, position)


def count_tokens(lm, text: str) -> int:
    return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def inspect_prompt(state: RunState, prompt: str, k: int = 20, per_token: int = 10) -> Inspection:
    state.ensure_model()
    limits = state.limits
    n = count_tokens(state.lm, prompt)
    if n == 0:
        raise ConfigError("the prompt has no tokens: type some text")
    if n > limits.max_prompt_tokens:
        raise ConfigError(f"the prompt has {n} tokens; the limit is {limits.max_prompt_tokens}: shorten it")
    with state.model_lock:
        result = top_for_prompt(state.db(), state.lm, state.sae, state.layer, prompt, k=k, per_token=per_token)
    tokens = [TokenFeatures(i, t, feats) for i, (t, feats) in enumerate(zip(result.tokens, result.per_token)) if i > 0]
    return Inspection(tokens, result.top)


@dataclass
class SteerEvent:
    row: str    # "unsteered" | "steered"
    text: str   # newly decoded text (the whole completion when replace)
    replace: bool = False


def _cache_arg(model) -> str:
    """transformers 5.x renamed `past_key_values` to `cache` (the old name warns)."""

    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _eos_ids(lm) -> set[int]:
    ids = {lm.tokenizer.eos_token_id}
    configured = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids |= set(configured) if isinstance(configured, (list, tuple)) else {configured}
    ids.discard(None)
    return ids


class SteeredDecoding:
    """Validated at construction (errors become 4xx before any streaming starts);
    iterate for SteerEvents."""

    ROWS = ("unsteered", "steered")

    def __init__(self, state: RunState, prompt: str, interventions: Sequence, max_new_tokens: int,
                 temperature: float = 0.7, seed: int = 0, chat: bool = True):
        state.ensure_model()
        self.state, self.lm, self.sae, self.layer = state, state.lm, state.sae, state.layer
        check_compatible(self.lm, self.sae, self.layer)
        plan = resolve(list(interventions), int(self.sae.W_dec.shape[0]), state.max_acts)
        dev = self.lm.device
        self.plan = type(plan)(plan.features.to(dev), plan.modes, plan.values.to(dev))
        self.ids, self.prompt_text = encode_prompt(self.lm, prompt, chat)   # [1, T]
        check_length(self.lm, self.ids.shape[1], max_new_tokens)
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        self.descriptions = [iv.describe() for iv in interventions]
        self.completions = {"unsteered": "", "steered": ""}

    def _patch(self):
        fn = steering_fn(self.sae.to(self.lm.device), self.plan)

        def patched(hidden: torch.Tensor) -> torch.Tensor:  # [2, T, d]: steer row 1 only
            return torch.cat([hidden[:1], fn(hidden[1:])], 0)

        return patched

    def __iter__(self) -> Iterator[SteerEvent]:
        lm, tok = self.lm, self.lm.tokenizer
        eos = _eos_ids(lm)
        patched = self._patch()
        gen = torch.Generator().manual_seed(self.seed)
        inputs = self.ids.repeat(2, 1).to(lm.device)                             # [2, T]
        past = None
        out_ids: list[list[int]] = [[], []]
        done = [False, False]
        for _ in range(self.max_new_tokens):
            with self.state.model_lock, torch.inference_mode(), lm.patch_residual(self.layer, patched):
                out = lm.model(input_ids=inputs, use_cache=True, **({} if past is None else {_cache_arg(lm.model): past}))
            past = _cache_of(out)
            logits = out.logits[:, -1].float()                                   # [2, vocab]
            if self.temperature > 0:
                cdf = torch.softmax(logits / self.temperature, -1).cumsum(-1)    # [2, vocab]
                u = torch.rand(1, generator=gen).to(cdf.device) * cdf[:, -1:]
                nxt = torch.searchsorted(cdf, u).clamp_max(cdf.shape[1] - 1)[:, 0]
            else:
                nxt = logits.argmax(-1)
            for row in (0, 1):
                if done[row]:
                    continue
                t = int(nxt[row])
                if t in eos:
                    done[row] = True
                    continue
                before = self.completions[self.ROWS[row]]
                out_ids[row].append(t)
                text = tok.decode(out_ids[row], skip_special_tokens=True)
                self.completions[self.ROWS[row]] = text
                if len(text) > len(before) and text.startswith(before):
                    yield SteerEvent(self.ROWS[row], text[len(before):])
                elif text != before:  # a multi-byte character completed differently: resend the row
                    yield SteerEvent(self.ROWS[row], text, replace=True)
            if all(done):
                break
            inputs = nxt[:, None]                                                # [2, 1]
