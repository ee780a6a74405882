"""The realistic synthetic dictionary and the recovery metrics on it."""

from __future__ import annotations

import numpy as np
import torch

from monosemantic.evals.synthetic import SyntheticConfig, SyntheticDictionary, recovery
from monosemantic.sae import SAEConfig, make_sae

CFG = SyntheticConfig(d=32, n_true=96, cluster_size=4, mean_active=6.0)


def test_rows_are_deterministic_scaled_and_follow_the_power_law():
    truth = SyntheticDictionary(CFG)
    a, b = truth.rows(2000, stream=3), truth.rows(2000, stream=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, truth.rows(2000, stream=4))
    assert abs(np.linalg.norm(a, axis=1).mean() - np.sqrt(CFG.d)) < 0.3
    p = truth.feature_prob
    assert p.max() / p.min() > 10, "a power law: common and rare directions"
    # Same-cluster directions are correlated, others nearly orthogonal (d = 32: ~0.14 by chance).
    cos = truth.directions @ truth.directions.T
    same = truth.cluster_of[:, None] == truth.cluster_of[None, :]
    off = ~np.eye(CFG.n_true, dtype=bool)
    assert cos[same & off].mean() > 0.2 > np.abs(cos[~same]).mean()


def test_recovery_scores_the_truth_as_recovered_and_random_directions_as_not():
    truth = SyntheticDictionary(CFG)
    heldout = torch.from_numpy(truth.rows(4000, stream=-2))
    sae = make_sae(SAEConfig("relu", CFG.d, CFG.n_true))
    random = recovery(sae, truth, heldout)
    with torch.no_grad():
        sae.W_dec.copy_(torch.from_numpy(truth.directions))
        sae.W_enc.copy_(torch.from_numpy(truth.directions).T)
        sae.b_enc.fill_(-0.5 * truth.scale)       # fires only where its direction is present
    exact = recovery(sae, truth, heldout)
    assert exact.mean_max_cosine > 0.999 and exact.recovered_fraction == 1.0
    assert random.mean_max_cosine < 0.7 and random.recovered_fraction < 0.05
    assert 0 < exact.l0 < CFG.n_true and 0 <= exact.dead_fraction < 0.1
