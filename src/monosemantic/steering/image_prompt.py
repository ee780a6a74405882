"""A steering prompt with an image in it (a vision-language model): the image and the
user's text through the processor's chat template when it has one (instruct VLMs such
as SmolVLM), else the BOS-like token, the image and the text, as `inspect --image`."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..models.vision import require_vision


def encode_image_prompt(lm, image, prompt: str, chat: bool = True) -> tuple[torch.Tensor, str, dict]:
    """-> (ids [1, T], the text the processor saw, the other model inputs)."""
    vlm = require_vision(lm)
    if not prompt:
        raise ConfigError("the prompt is empty: pass --prompt TEXT (what to ask about the image)")
    text = _chat_text(vlm.processor, prompt) if chat else None
    inputs = vlm.encode_image(image, prompt) if text is None else vlm.encode_image(image, text=text)
    return inputs.input_ids, inputs.text, inputs.model_inputs


def _chat_text(processor, prompt: str) -> str | None:
    """The processor's chat template applied to [image, prompt]; None without a
    template that takes images (a processor can inherit a text-only one from its
    tokenizer: it fails on the list-of-parts message)."""
    from jinja2 import TemplateError

    if not getattr(processor, "chat_template", None):
        return None
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    try:
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except (TemplateError, TypeError, ValueError, KeyError):
        return None
    placeholder = getattr(processor, "image_token", None)
    return text if isinstance(text, str) and (placeholder is None or placeholder in text) else None
