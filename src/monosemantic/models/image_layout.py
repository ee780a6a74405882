"""Where the image tokens of a processed prompt sit in the picture.

A processor expands each image into runs of image-placeholder tokens: LLaVA and Gemma 3
one run of g x g patch tokens (LLaVA's "full" feature strategy keeps a CLS token
first), Idefics3/SmolVLM one run per tile (preceded by `<row_R_col_C>` text) plus one
for the downscaled whole image (`<global-img>`), Qwen2-VL one run of (h/2) x (w/2)
merged patches. Each run is laid out row-major over its picture; tiles are stitched
into one grid over the whole image. The result maps every grid cell to its position
in the sequence, so a heat map is activation[positions]."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

_TILE = re.compile(r"<row_(\d+)_col_(\d+)>")


@dataclass
class PatchView:
    """One picture the model saw, as a grid of image-token positions."""
    name: str                 # "image" | "tiles" | "global"
    positions: torch.Tensor   # [rows, cols] int64 sequence positions, row-major over the picture
    frame: np.ndarray | None  # [H, W, 3] uint8: the pixels behind the grid (None when unknown)


def image_runs(ids: torch.Tensor, image_token_id: int) -> list[torch.Tensor]:
    """Contiguous runs of the image token in ids [T], as position tensors."""
    pos = (ids == image_token_id).nonzero()[:, 0]
    if len(pos) == 0:
        return []
    breaks = (pos[1:] != pos[:-1] + 1).nonzero()[:, 0] + 1
    return list(torch.tensor_split(pos, breaks.tolist()))


def _grid(run: torch.Tensor, thw: torch.Tensor | None, merge: int) -> torch.Tensor:
    """A run of image positions -> [rows, cols]."""
    n = len(run)
    if thw is not None:  # Qwen2-VL: (t, h, w) patches, merged merge x merge
        t, h, w = (int(v) for v in thw)
        rows, cols = h // merge, w // merge
        if t * rows * cols == n:
            return run[: rows * cols].reshape(rows, cols)
    g = math.isqrt(n)
    if g * g == n:
        return run.reshape(g, g)
    g = math.isqrt(n - 1)
    if n > 1 and g * g == n - 1:     # a CLS token first (LLaVA "full")
        return run[1:].reshape(g, g)
    return run.reshape(1, n)


def _frames(pixel_values, mean, std) -> list[np.ndarray]:
    """pixel_values [..., 3, H, W] (normalised) -> uint8 frames; [] for flat patches."""
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() < 4:
        return []
    pv = pixel_values.reshape(-1, *pixel_values.shape[-3:]).float()           # [N, 3, H, W]
    mean = torch.tensor(mean if mean is not None else [0.0] * 3, dtype=torch.float32)[:, None, None]
    std = torch.tensor(std if std is not None else [1.0] * 3, dtype=torch.float32)[:, None, None]
    pixels = ((pv * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)    # [N, 3, H, W]
    return [p.permute(1, 2, 0).numpy() for p in pixels]


def patch_views(ids: torch.Tensor, image_token_id: int, decode, inputs: dict, image_processor=None) -> list[PatchView]:
    """ids [T] of one prompt with one image; decode(ids) -> text (finds tile labels);
    inputs: the processor's outputs (pixel_values, image_grid_thw)."""
    runs = image_runs(ids, image_token_id)
    thw = inputs.get("image_grid_thw")
    merge = int(getattr(image_processor, "merge_size", 2) or 2)
    frames = _frames(inputs.get("pixel_values"), getattr(image_processor, "image_mean", None),
                     getattr(image_processor, "image_std", None))
    if len(frames) != len(runs):
        frames = [None] * len(runs)
    tiles, views, last_end = {}, [], 0
    for i, run in enumerate(runs):
        before = decode(ids[last_end: int(run[0])].tolist())
        last_end = int(run[-1]) + 1
        grid = _grid(run, thw[i] if thw is not None and i < len(thw) else None, merge)
        label = _TILE.findall(before)
        if label:
            tiles[(int(label[-1][0]), int(label[-1][1]))] = (grid, frames[i])
        else:
            views.append(PatchView("global" if "global" in before or tiles else "image", grid, frames[i]))
    if tiles:
        views.insert(0, _stitch(tiles))
    return views


def _stitch(tiles: dict) -> PatchView:
    """Tiles keyed (row, col) from 1 -> one grid (and frame) over the whole picture."""
    n_rows, n_cols = max(r for r, _ in tiles), max(c for _, c in tiles)
    rows = [torch.cat([tiles[(r, c)][0] for c in range(1, n_cols + 1)], 1) for r in range(1, n_rows + 1)]
    frames = [[tiles[(r, c)][1] for c in range(1, n_cols + 1)] for r in range(1, n_rows + 1)]
    frame = None
    if all(f is not None for row in frames for f in row):
        frame = np.concatenate([np.concatenate(row, 1) for row in frames], 0)
    return PatchView("tiles", torch.cat(rows, 0), frame)
