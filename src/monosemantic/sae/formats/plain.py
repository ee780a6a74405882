"""A plain `.safetensors` or `.npz` with W_enc [d, n], W_dec [n, d], b_enc [n],
b_dec [d] (+ threshold [n]), in raw units. The file does not say how its encoder
works, so the caller does (`monosemantic import --architecture --k
--subtract-b-dec`); the default is jumprelu when a threshold is present, else relu,
with b_dec subtracted at the input as our architecture does. `.npz` is read with
allow_pickle=False."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ...errors import CheckpointError
from ..base import SAEConfig
from ..io import read_safetensors, sae_from_tensors
from ..registry import ALL_ARCHITECTURES as ARCHITECTURES
from .common import Imported


def _read(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: torch.from_numpy(np.asarray(z[name], dtype=np.float32)) for name in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a readable .npz of arrays ({e})") from e


def read_plain(path: Path, architecture: str | None = None, k: int | None = None,
               subtract_b_dec: bool | None = None) -> Imported:
    path = Path(path)
    t = _read(path)
    missing = [name for name in ("W_enc", "W_dec", "b_enc", "b_dec") if name not in t]
    if missing:
        raise CheckpointError(f"{path}: has no {', '.join(missing)} (found: {', '.join(sorted(t)) or 'nothing'})")
    arch = architecture or ("jumprelu" if "threshold" in t else "relu")
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown architecture {arch!r} (known: {sorted(ARCHITECTURES)})")
    if t["W_enc"].ndim != 2:
        raise CheckpointError(f"{path}: W_enc has shape {tuple(t['W_enc'].shape)}, expected [d_in, n_latents]")
    d, n = (int(v) for v in t["W_enc"].shape)
    config = SAEConfig(arch, d, n, k=k if k is not None else min(32, n))
    from ..registry import make_sae

    ours = make_sae(config).apply_b_dec_to_input
    applies = ours if subtract_b_dec is None else subtract_b_dec
    sae = sae_from_tensors(config, t, applies, path)
    return Imported(sae, {"format": "plain", "path": str(path.resolve()), "architecture": arch,
                          "conversions": [] if applies == ours else ["b_dec @ W_enc moved into b_enc"]}, {})
