from __future__ import annotations

import math

import torch
from steering_helpers import random_sae

from monosemantic.steering import Intervention, Target, ablation_scores, attribute, attribution_scores, steer

LAYER = 1


def _target_value(lm, ids, target):
    return float(target.of(lm.logits(ids))[0])


def test_attribution_equals_finite_difference(lm, ids):
    """attribution_i = d/dε T(f with f_i scaled by 1+ε) at ε=0: a central difference
    through the steering hook (multiply mode) must match the backward pass."""
    sae = random_sae(lm.d_model, 64)
    target = Target(token=500, versus=600)
    value, f, attr = attribution_scores(lm, sae, LAYER, ids, target)
    assert math.isclose(value, _target_value(lm, ids, target), rel_tol=1e-4, abs_tol=1e-4)
    eps = 1e-2
    for i in torch.argsort(attr.abs(), descending=True)[:3].tolist():
        with steer(lm, sae, LAYER, [Intervention(i, "multiply", 1 + eps)]):
            up = _target_value(lm, ids, target)
        with steer(lm, sae, LAYER, [Intervention(i, "multiply", 1 - eps)]):
            down = _target_value(lm, ids, target)
        fd = (up - down) / (2 * eps)
        assert math.isclose(fd, float(attr[i]), rel_tol=2e-2, abs_tol=1e-4), (i, fd, float(attr[i]))


def test_ablation_matches_attribution_when_linear(lm, ids):
    """With tiny decoder directions the rest of the model is linear in f: attribution and
    ablation agree feature by feature and correlate ~1."""
    sae = random_sae(lm.d_model, 64, dec_scale=1e-2)
    res = attribute(lm, sae, LAYER, ids, Target(token=500), top=10)
    assert res.effects
    for e in res.by_attribution:
        assert math.isclose(e.attribution, e.ablation, rel_tol=5e-2, abs_tol=1e-5)
    assert res.pearson > 0.99 and res.pearson_all > 0.99


def test_ablation_of_silent_feature_changes_nothing(lm, ids):
    sae = random_sae(lm.d_model, 64)
    with torch.no_grad():
        sae.b_enc[7] = -1e4                                                # feature 7 never fires
    target = Target(token=500)
    value, f, attr = attribution_scores(lm, sae, LAYER, ids, target)
    assert float(f[:, 7].abs().max()) == 0 and float(attr[7]) == 0
    base, drops = ablation_scores(lm, sae, LAYER, ids, target, torch.tensor([7, 7, 7]), batch_size=2)
    assert drops.tolist() == [0.0, 0.0, 0.0]
    # batching does not change the numbers
    feats = torch.nonzero(f[1:].amax(0) > 0).flatten()[:5]
    _, one = ablation_scores(lm, sae, LAYER, ids, target, feats, batch_size=1)
    _, many = ablation_scores(lm, sae, LAYER, ids, target, feats, batch_size=5)
    torch.testing.assert_close(one, many, atol=1e-4, rtol=1e-4)
