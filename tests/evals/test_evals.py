import math

import numpy as np
import pytest
import torch

from monosemantic.evals import density_stats, reconstruction_stats, spliced_stats
from monosemantic.evals.density import firing_counts


class IdentitySAE:
    """Exact identity through non-negative features: f = [relu(x), relu(-x)]."""

    def encode(self, x):
        return torch.cat([x.clamp(min=0), (-x).clamp(min=0)], dim=-1)

    def decode(self, f):
        d = f.shape[-1] // 2
        return f[..., :d] - f[..., d:]


class ZeroSAE:
    def __init__(self, n):
        self.n = n

    def encode(self, x):
        return torch.zeros(x.shape[0], self.n)

    def decode(self, f):
        return torch.zeros(f.shape[0], 4)


def batches(n=3, b=50, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g) * 3 + 1 for _ in range(n)]


def test_identity_sae_explains_everything():
    stats = reconstruction_stats(IdentitySAE(), batches())
    assert stats.fve == pytest.approx(1.0, abs=1e-6) and stats.mse == pytest.approx(0.0, abs=1e-9)
    assert stats.tokens == 150
    assert stats.l0 == pytest.approx(4.0)  # every coordinate is non-zero on exactly one side


def test_zero_sae_fve_matches_hand_computation():
    xs = batches()
    x = torch.cat(xs)
    stats = reconstruction_stats(ZeroSAE(8), xs)
    expected = 1 - x.pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert stats.fve == pytest.approx(float(expected), rel=1e-5)
    assert stats.mse == pytest.approx(float(x.pow(2).sum(1).mean()), rel=1e-5)
    assert stats.l0 == 0


def test_density_dead_dense_and_histogram():
    counts = torch.tensor([0, 0, 1, 10, 500, 1000])  # of 1000 tokens
    stats = density_stats(counts, 1000, bins=3)
    assert stats.dead_fraction == pytest.approx(2 / 6)
    assert stats.dense_fraction == pytest.approx(2 / 6)  # 0.5 and 1.0 exceed 10 %
    assert sum(stats.log10_density_hist) == 4
    assert stats.window_tokens == 1000


def test_firing_counts_of_identity_sae():
    xs = [torch.tensor([[1.0, -2.0], [0.0, 3.0]])]
    counts, n = firing_counts(IdentitySAE(), xs)
    assert n == 2 and counts.tolist() == [1, 1, 0, 1]  # positives 1 | 3, negatives none | -2


@pytest.fixture(scope="module")
def contexts(tiny_llama):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 5000, (6, 24), generator=g)
    ids[:, 0] = tiny_llama.bos_id
    return ids


def test_identity_splice_recovers_all_loss(tiny_llama, contexts):
    mean = torch.zeros(tiny_llama.d_model)
    stats = spliced_stats(tiny_llama, 2, contexts, lambda x: x, mean, batch_size=4)
    assert stats.ce_sae == pytest.approx(stats.ce_clean, abs=1e-5)
    assert stats.loss_recovered == pytest.approx(1.0, abs=1e-4)
    assert stats.kl_sae == pytest.approx(0.0, abs=1e-5) and stats.kl_zero > 0
    assert stats.tokens == 6 * 23


def test_zero_and_mean_splices_recover_nothing(embedded_lm):
    # A real model, so that ablating layer 15 really hurts and the gaps are positive.
    text = "def mean(values):\n    return sum(values) / len(values)\n\nThe river flows to the sea."
    ids = torch.tensor([[embedded_lm.bos_id] + embedded_lm.tokenizer(text).input_ids])
    mean = embedded_lm.residual(ids, 15)[0, 1:].float().mean(0)
    zero = spliced_stats(embedded_lm, 15, ids, torch.zeros_like, mean)
    assert zero.loss_recovered == pytest.approx(0.0, abs=1e-5)
    assert zero.ce_zero > zero.ce_clean
    as_mean = spliced_stats(embedded_lm, 15, ids, lambda x: mean.expand_as(x), mean)
    assert as_mean.loss_recovered_mean_ablation == pytest.approx(0.0, abs=1e-5)
    assert not math.isnan(as_mean.loss_recovered)
