"""The strongest features on an image (and an optional text prompt) through a
vision-language model: the image tokens are scored separately from the text tokens,
and any feature's activation over the image tokens is a heat map over the picture
(one grid per view the processor made: Idefics3's tiles and its global image, one
grid elsewhere). The text positions follow the one valid-token rule (activations/
valid.py); image positions are the processor's image tokens, all of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..activations.valid import excluded_ids, valid_tokens
from ..models.vision import ImageInputs, require_vision
from ..token_text import show_tokens

Top = list[tuple[int, float, int]]  # (feature, max activation, position of the max)


@dataclass
class ImageFeatures:
    inputs: ImageInputs
    tokens: list[str]          # display text per position
    acts: torch.Tensor         # [T, n_latents] float32, 0 where a position is not scored
    image_mask: torch.Tensor   # [T] bool
    text_mask: torch.Tensor    # [T] bool

    def top(self, where: str = "image", k: int = 10) -> Top:
        """Features by their maximum over the image tokens or over the text tokens."""
        mask = self.image_mask if where == "image" else self.text_mask
        if not mask.any():
            return []
        acts = self.acts * mask[:, None]
        mx, pos = acts.max(0)
        order = torch.argsort(mx, descending=True)[:k]
        return [(int(f), float(mx[f]), int(pos[f])) for f in order if mx[f] > 0]

    def heat_maps(self, feature: int) -> list[dict]:
        """Per view: {name, rows, cols, values [rows][cols]} of `feature`."""
        col = self.acts[:, feature]
        return [{"name": v.name, "rows": int(v.positions.shape[0]), "cols": int(v.positions.shape[1]),
                 "values": col[v.positions].tolist()} for v in self.inputs.views]

    def patch_of(self, position: int) -> tuple[str, int, int] | None:
        """(view, row, col) of an image position."""
        for v in self.inputs.views:
            hit = (v.positions == position).nonzero()
            if len(hit):
                return v.name, int(hit[0, 0]), int(hit[0, 1])
        return None


@torch.no_grad()
def image_features(lm, sae, layer: int, image, prompt: str = "", inputs: ImageInputs | None = None) -> ImageFeatures:
    """Run the model on the image (+ prompt) to `layer` and the SAE on every position."""
    vlm = require_vision(lm)
    inputs = inputs or vlm.encode_image(image, prompt)
    resid = vlm.image_residual(inputs, layer).float()                        # [T, d]
    acts = sae.encode(resid.to(next(sae.parameters()).device)).float().cpu()  # [T, n]
    ids = inputs.input_ids.cpu()
    image_mask = torch.zeros(ids.shape[1], dtype=torch.bool)
    image_mask[inputs.image_positions.cpu()] = True
    text_mask = valid_tokens(ids, exclude_ids=excluded_ids(lm))[0] & ~image_mask
    # Only positions after the image count as the prompt's text: the processor's
    # framing before it (tile labels, "<global-img>") is not the user's text.
    text_mask[: int(inputs.image_positions.max()) + 1] = False
    acts *= (image_mask | text_mask)[:, None]
    return ImageFeatures(inputs, show_tokens(lm.tokenizer, ids[0].tolist()), acts, image_mask, text_mask)


def frame_png(frame: np.ndarray, max_side: int = 384) -> bytes:
    """A view's pixels as PNG bytes (nearest-neighbour upscaled for tiny frames so the
    patch grid stays visible, downscaled above max_side)."""
    import io

    from PIL import Image

    image = Image.fromarray(frame)
    scale = max_side / max(image.size)
    if scale < 1 or scale >= 2:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.NEAREST if scale >= 2 else Image.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
