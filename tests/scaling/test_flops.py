"""FLOP counts against hand counts, and the cumulative count logged by training."""

import json

import numpy as np
import pytest

from monosemantic.errors import ConfigError
from monosemantic.scaling.flops import run_flops, step_flops


def test_relu_hand_count():
    # B=4, d=3, n=5: encoder 2·4·3·5=120, decoder 120, backward ∂W_dec 120 + ∂f 120 + ∂W_enc 120
    s = step_flops("relu", d=3, n_latents=5, batch_size=4)
    assert (s.encoder_forward, s.decoder_forward, s.backward, s.aux) == (120, 120, 360, 0)
    assert s.total == 600 == 10 * 4 * 3 * 5
    assert step_flops("jumprelu", 3, 5, 4).total == 600


def test_topk_hand_count():
    # B=2, d=4, n=10, k=3: dense encoder 2·2·4·10=160; sparse decoder 2·2·3·4=48;
    # backward: ∂acts 48 + ∂W_dec 48 + ∂xc 48 + ∂W_enc 48 = 192
    s = step_flops("topk", d=4, n_latents=10, batch_size=2, k=3)
    assert (s.encoder_forward, s.decoder_forward, s.backward, s.aux) == (160, 48, 192, 0)
    # AuxK over m = min(aux_k=d//2=2, n_dead=7) = 2 latents: 10·2·2·4 = 160
    assert step_flops("topk", 4, 10, 2, k=3, n_dead=7).aux == 160
    assert step_flops("batchtopk", 4, 10, 2, k=3).total == s.total


def test_run_flops_and_unknown():
    assert run_flops("relu", 3, 5, 4, n_tokens=41) == 10 * 600
    with pytest.raises(ConfigError):
        step_flops("dense", 3, 5, 4)


def test_training_logs_cumulative_flops(tmp_path):
    from monosemantic.train import TrainConfig, train_run

    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((600, 8)).astype("float32"))
    cfg = TrainConfig(n_tokens=640, batch_size=64, log_every=5, checkpoint_every=0)
    train_run(tmp_path / "run", {"n_latents": 16}, cfg, activations=tmp_path / "x.npy", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["flops"] for r in records] == [r["step"] * 10 * 64 * 8 * 16 for r in records]
