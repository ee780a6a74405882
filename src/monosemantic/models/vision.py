"""A transformers vision-language model (AutoModelForImageTextToText + AutoProcessor) as
a LanguageModel: `residual`, `patch_residual`, `capture_residual` and the facts
(n_layers, d_model, bos_id, ...) are its language model's, so corpus, harvest, train,
eval and features run on its text unchanged. On top: `encode_image` turns an image
(and optional text) into the model's inputs, with the image tokens located and laid
out over the picture (image_layout.py), and `image_residual` runs them to a layer.

Exercised with tiny random configs (tests/models/test_vision.py): Idefics3 (SmolVLM's
architecture), LLaVA (CLIP vision tower + Llama), Gemma 3."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ModelError
from .image_layout import PatchView, patch_views
from .language_model import LanguageModel


def is_vision_config(config) -> bool:
    """A composite config with a vision tower (every image-text-to-text family has one)."""
    return getattr(config, "vision_config", None) is not None


def load_vision_parts(source, dtype: torch.dtype, **kwargs):
    """-> (processor, model) through the Auto classes a user's model takes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(source, **kwargs)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ModelError(f"{source} is a vision-language model but its processor cannot be loaded ({e}): "
                         f"save the processor beside the model (processor.save_pretrained)") from e
    try:
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, **kwargs)
    except ValueError as e:
        raise ModelError(f"{source}: transformers has no image-text-to-text class for it ({e})") from e
    return processor, model


@dataclass
class ImageInputs:
    """One prompt with one image, ready for the model."""
    input_ids: torch.Tensor        # [1, T]
    model_inputs: dict             # the processor's other outputs (attention_mask, pixel_values, ...)
    image_positions: torch.Tensor  # [n_image_tokens] sequence positions, ascending
    views: list[PatchView]         # the image tokens laid out over the picture
    text: str                      # the text given to the processor (with its image placeholder)

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])


@dataclass
class VisionLanguageModel(LanguageModel):
    processor: object = field(default=None)

    @property
    def image_token_id(self) -> int:
        """The placeholder the processor repeats once per image embedding."""
        cfg = self.model.config
        for value in (getattr(cfg, "image_token_id", None), getattr(cfg, "image_token_index", None),
                      getattr(self.processor, "image_token_id", None)):
            if isinstance(value, int):
                return value
        raise ModelError(f"{self.name}: cannot find the image token id in its config or processor")

    @property
    def image_placeholder(self) -> str:
        """The text the processor expands into the image's tokens."""
        proc = self.processor
        for name in ("image_token", "boi_token"):
            value = getattr(proc, name, None)
            if isinstance(value, str) and value:
                return value
        return self.tokenizer.convert_ids_to_tokens(self.image_token_id)

    def encode_image(self, image, prompt: str = "", text: str | None = None) -> ImageInputs:
        """The BOS-like token (the attention sink lands there, as in harvest), the image,
        then the prompt; through the processor, so the image tokens are its own.
        text: the whole text instead (a chat template's, with its image placeholder)."""
        if text is None:
            text = f"{self.tokenizer.convert_ids_to_tokens(self.bos_id)}{self.image_placeholder}{prompt}"
        try:
            enc = self.processor(images=[image], text=text, return_tensors="pt")
        except (ValueError, TypeError) as e:
            raise ModelError(f"{self.name}'s processor refused the image ({e})") from e
        ids = enc.pop("input_ids")                                                # [1, T]
        inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in enc.items()}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        positions = (ids[0] == self.image_token_id).nonzero()[:, 0]
        if len(positions) == 0:
            raise ModelError(f"{self.name}'s processor put no image token ({self.image_token_id}) into the prompt")
        views = patch_views(ids[0], self.image_token_id, self.tokenizer.decode, enc,
                            getattr(self.processor, "image_processor", None))
        return ImageInputs(ids, inputs, positions, views, text)

    def image_residual(self, inputs: ImageInputs, layer: int) -> torch.Tensor:
        """Residual after block `layer` over the whole image prompt, [T, d]."""
        return self.residual(inputs.input_ids, layer, **inputs.model_inputs)[0]


def require_vision(lm) -> VisionLanguageModel:
    """The one-line refusal for --image (or an upload) on a text-only model."""
    if not isinstance(lm, VisionLanguageModel):
        raise ModelError(f"{lm.name} is a text-only model: images need a vision-language model "
                         f"(Idefics3/SmolVLM, LLaVA, Gemma 3; docs/multimodal.md)")
    return lm
