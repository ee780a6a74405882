"""Matryoshka under bfloat16 autocast (`--train-dtype bfloat16`, what `auto` picks on a
CPU with native bf16 for an architecture marked bf16_safe) trains to float32's result
on a synthetic dictionary: same loss, FVE and L0 within tolerance, no NaN."""

from __future__ import annotations

import math

import torch

from monosemantic.train import TrainConfig
from monosemantic.train.loop import resolve_dtype, train_sae

from sparse_dictionary import sparse_rows

D, N, BATCH, STEPS = 64, 256, 256, 200


def test_matryoshka_in_bfloat16_matches_float32():
    x = torch.from_numpy(sparse_rows(BATCH * STEPS, seed=3, d=D, n_true=96, active=3))
    batches = list(x.split(BATCH))
    sae_cfg = {"architecture": "matryoshka", "d_in": D, "n_latents": N, "k": 3, "matryoshka_widths": [32, 128, N]}
    last = {}
    for dtype in ("float32", "bfloat16"):
        cfg = TrainConfig(n_tokens=BATCH * STEPS, batch_size=BATCH, dtype=dtype, log_every=20, checkpoint_every=0)
        result = train_sae(batches, sae_cfg, cfg, progress=False)
        last[dtype] = result.last_metrics
        assert all(math.isfinite(v) for v in (result.last_metrics["loss"], result.last_metrics["fve"]))
    f32, bf16 = last["float32"], last["bfloat16"]
    assert f32["fve"] > 0.4, f32                                     # it learned the dictionary at all
    assert abs(bf16["fve"] - f32["fve"]) < 0.01, (f32, bf16)
    assert abs(bf16["loss"] - f32["loss"]) <= 0.05 * f32["loss"], (f32, bf16)
    assert abs(bf16["l0"] - f32["l0"]) <= 0.05 * f32["l0"], (f32, bf16)


def test_auto_trains_matryoshka_as_it_trains_topk():
    """`auto` picks bfloat16 for matryoshka wherever it picks it for topk and relu."""
    assert resolve_dtype("auto", "matryoshka") == resolve_dtype("auto", "topk") == resolve_dtype("auto", "relu")
