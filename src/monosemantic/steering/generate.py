"""Steered and unsteered completions of one prompt, sampled with the same seed so the
only difference is the intervention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..errors import ConfigError
from .interventions import DEFAULT_POSITIONS, Intervention, check_compatible, check_positions, resolve, steer


@dataclass
class Completions:
    prompt: str            # the text the model saw (after the chat template)
    unsteered: str
    steered: str
    interventions: list[str]


def encode_prompt(lm, prompt: str, chat: bool = True) -> tuple[torch.Tensor, str]:
    """[1, T] ids: through the tokenizer's chat template when it has one (instruct
    models), else the BOS-like token followed by the prompt."""
    tok = lm.tokenizer
    if not prompt:
        raise ConfigError("the prompt is empty: pass --prompt TEXT")
    if chat and getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
    else:
        text = prompt
        ids = [lm.bos_id] + list(tok(prompt, add_special_tokens=False)["input_ids"])
    return torch.tensor([ids]), text


def context_length(lm) -> int | None:
    cfg = lm.model.config.get_text_config()  # a vision-language model's limit is its language model's
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def check_length(lm, n_tokens: int, max_new_tokens: int = 0) -> None:
    limit = context_length(lm)
    if limit is not None and n_tokens + max_new_tokens > limit:
        raise ConfigError(f"the prompt ({n_tokens} tokens) plus {max_new_tokens} new tokens exceeds {lm.name}'s "
                          f"context of {limit} tokens: shorten the prompt or lower --max-new-tokens")


def sample_ids(lm, ids: torch.Tensor, max_new_tokens: int, seed: int, temperature: float, n: int = 1,
               model_inputs: dict | None = None) -> list[list[int]]:
    """`n` completions of the prompt ids [1, T], sampled in one batch from `seed`;
    each is cut at its end-of-sequence token (kept out). model_inputs: a
    vision-language prompt's pixel_values etc. (with n = 1)."""
    torch.manual_seed(seed)
    tok = lm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    kwargs = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if temperature > 0 else dict(do_sample=False)
    batch = ids.repeat(n, 1).to(lm.device)                                  # [n, T]: no padding, positions aligned
    extra = {k: v for k, v in (model_inputs or {}).items() if k != "attention_mask"}
    if extra and n != 1:
        raise ValueError("image prompts are sampled one completion at a time")  # internal: callers pass n=1
    with torch.inference_mode():
        out = lm.model.generate(batch, attention_mask=torch.ones_like(batch), max_new_tokens=max_new_tokens, pad_token_id=pad,
                                **extra, **kwargs)
    stops = {t for t in (tok.eos_token_id, pad) if t is not None}
    rows = []
    for row in out[:, ids.shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        rows.append(row[:cut])
    return rows


def _sample(lm, ids: torch.Tensor, max_new_tokens: int, seed: int, temperature: float, model_inputs=None) -> str:
    return lm.tokenizer.decode(sample_ids(lm, ids, max_new_tokens, seed, temperature, model_inputs=model_inputs)[0],
                               skip_special_tokens=True)


def steered_completions(lm, sae, layer: int, prompt: str, interventions: Sequence[Intervention], *, max_acts=None,
                        max_new_tokens: int = 40, seed: int = 0, temperature: float = 0.7, chat: bool = True,
                        positions: str = DEFAULT_POSITIONS, image=None) -> Completions:
    """image: a PIL image put before the prompt (a vision-language model); the same
    interventions then act on the image tokens' residual too, as on the other positions."""
    if max_new_tokens <= 0:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    check_compatible(lm, sae, layer)
    check_positions(positions)
    resolve(interventions, int(sae.W_dec.shape[0]), max_acts)  # bad specs fail before any sampling
    if image is None:
        ids, text, model_inputs = *encode_prompt(lm, prompt, chat), None
    else:
        from .image_prompt import encode_image_prompt

        ids, text, model_inputs = encode_image_prompt(lm, image, prompt, chat)
    check_length(lm, ids.shape[1], max_new_tokens)
    unsteered = _sample(lm, ids, max_new_tokens, seed, temperature, model_inputs)
    with steer(lm, sae, layer, interventions, max_acts, positions=positions):
        steered = _sample(lm, ids, max_new_tokens, seed, temperature, model_inputs)
    return Completions(text, unsteered, steered, [iv.describe() for iv in interventions])
