from __future__ import annotations

import pytest
import torch
from steering_helpers import orthonormal_sae, random_sae

from monosemantic.errors import ConfigError
from monosemantic.steering import Intervention, parse_intervention, steer, steered_completions
from monosemantic.steering.interventions import DEFAULT_ADD
from monosemantic.steering.interventions import resolve, steering_fn

LAYER = 1


@pytest.mark.parametrize("spec, expected", [
    ("123=10x", Intervention(123, "clamp", 10.0, "max")),
    ("5=3.5", Intervention(5, "clamp", 3.5, "abs")),
    ("7=+4", Intervention(7, "add", 4.0)),
    ("7=+-4", Intervention(7, "add", -4.0)),
    ("9=*2", Intervention(9, "multiply", 2.0)),
    (" 9 = -1.5 ", Intervention(9, "clamp", -1.5)),
    ("7=+2x", Intervention(7, "add", 2.0, "max")),
    ("123", Intervention(123, "add", DEFAULT_ADD, "max")),  # a bare id: the default strength
])
def test_parse(spec, expected):
    assert parse_intervention(spec) == expected


@pytest.mark.parametrize("spec", ["123=10q", "abc=1", "1=", "=3", "1=x", "1=1e400", "1=+inf", "-1=3", "1=1e7x", "1=*2x"])
def test_bad_specs(spec):
    with pytest.raises(ConfigError):
        parse_intervention(spec)


def test_resolve_errors():
    with pytest.raises(ConfigError, match="does not exist"):
        resolve([Intervention(99, "clamp", 1.0)], n_latents=10)
    with pytest.raises(ConfigError, match="features.db"):
        resolve([Intervention(1, "clamp", 5.0, "max")], n_latents=10)
    with pytest.raises(ConfigError, match="never fired"):
        resolve([Intervention(1, "clamp", 5.0, "max")], n_latents=10, max_acts=torch.zeros(10))
    with pytest.raises(ConfigError, match="overflows"):
        resolve([Intervention(1, "clamp", 1e5, "max")], n_latents=10, max_acts=torch.full((10,), 1e3))
    plan = resolve([Intervention(1, "clamp", 5.0, "max"), Intervention(2, "add", -1.0)], 10, max_acts=torch.full((10,), 2.0))
    assert plan.values.tolist() == [10.0, -1.0]


def test_identity_clamp_reproduces_logits(lm):
    """Clamping several features to their own current values (one steered position)
    leaves the logits unchanged; so do *1 and +0."""
    sae = random_sae(lm.d_model, 96)
    ids = torch.tensor([[lm.bos_id, 1234]])
    base = lm.logits(ids)
    x = lm.residual(ids, LAYER)[0, 1].float()
    f = sae.encode(x)
    feats = torch.nonzero(f > 0).flatten()[:4].tolist() + [int(torch.argmin(f))]
    assert len(feats) >= 3
    specs = [Intervention(i, "clamp", float(f[i])) for i in feats]
    with steer(lm, sae, LAYER, specs):
        steered = lm.logits(ids)
    torch.testing.assert_close(steered, base, atol=1e-4, rtol=1e-4)
    long_ids = torch.tensor([[lm.bos_id, 1234, 99, 4567, 8]])
    base_long = lm.logits(long_ids)
    with steer(lm, sae, LAYER, [Intervention(i, "multiply", 1.0) for i in feats] + [Intervention(3, "add", 0.0)]):
        torch.testing.assert_close(lm.logits(long_ids), base_long, atol=1e-5, rtol=1e-5)
    # leaving the block removes the hook
    torch.testing.assert_close(lm.logits(ids), base)


def test_clamp_changes_only_chosen_feature(lm, ids):
    sae = orthonormal_sae(lm.d_model, 48)
    x = lm.residual(ids, LAYER).float()                                   # [1, T, d]
    plan = resolve([Intervention(3, "clamp", 1007.5), Intervention(11, "clamp", 990.0)], 48)
    x2 = steering_fn(sae, plan)(x)
    f, f2 = sae.encode(x)[0], sae.encode(x2)[0]                            # [T, n]
    torch.testing.assert_close(f2[1:, 3], torch.full_like(f2[1:, 3], 1007.5), atol=1e-3, rtol=0)
    torch.testing.assert_close(f2[1:, 11], torch.full_like(f2[1:, 11], 990.0), atol=1e-3, rtol=0)
    others = [j for j in range(48) if j not in (3, 11)]
    torch.testing.assert_close(f2[:, others], f[:, others], atol=1e-3, rtol=0)
    torch.testing.assert_close(x2[:, 0], x[:, 0])                          # position 0 untouched


def test_error_term_kept_and_add_multiply(lm, ids):
    sae = random_sae(lm.d_model, 96)
    x = lm.residual(ids, LAYER).float()                                   # [1, T, d]
    f = sae.encode(x)
    i = int(f[0, 1:].sum(0).argmax())                                      # a feature that fires
    x2 = steering_fn(sae, resolve([Intervention(i, "clamp", 7.0)], 96))(x)
    f_clamped = f.clone()
    f_clamped[0, 1:, i] = 7.0
    err, err2 = x - sae.decode(f), x2 - sae.decode(f_clamped)
    torch.testing.assert_close(err2[:, 1:], err[:, 1:], atol=1e-4, rtol=1e-4)
    x3 = steering_fn(sae, resolve([Intervention(i, "add", 2.5)], 96))(x)
    torch.testing.assert_close(x3[0, 1:] - x[0, 1:], (2.5 * sae.W_dec[i]).expand_as(x[0, 1:]), atol=1e-5, rtol=1e-5)
    x4 = steering_fn(sae, resolve([Intervention(i, "multiply", 3.0)], 96))(x)
    torch.testing.assert_close(x4[0, 1:] - x[0, 1:], 2.0 * f[0, 1:, i, None] * sae.W_dec[i], atol=1e-4, rtol=1e-4)
    assert torch.equal(x4[0, 0], x[0, 0])


def test_steering_changes_logits_and_generation(lm, ids):
    sae = random_sae(lm.d_model, 96)
    base = lm.logits(ids)
    with steer(lm, sae, LAYER, [Intervention(5, "add", 50.0)]):
        assert (lm.logits(ids) - base).abs().max() > 1e-2
    same = steered_completions(lm, sae, LAYER, "Hello", [Intervention(5, "multiply", 1.0)], max_new_tokens=4, seed=3)
    assert same.steered == same.unsteered
    diff = steered_completions(lm, sae, LAYER, "Hello", [Intervention(5, "add", 200.0)], max_new_tokens=4, seed=3,
                               temperature=0, chat=False)
    assert diff.steered != diff.unsteered


def test_model_mismatch_and_long_prompt(lm):
    with pytest.raises(ConfigError, match="d_model"):
        with steer(lm, random_sae(lm.d_model + 8, 16), LAYER, [Intervention(1, "add", 1.0)]):
            pass
    with pytest.raises(ConfigError, match="context"):
        steered_completions(lm, random_sae(lm.d_model, 16), LAYER, "word " * 300, [Intervention(1, "add", 1.0)], chat=False)


def test_generated_positions_leave_the_prompt_alone(lm, ids):
    """positions="generated": a whole-prompt forward is steered at its last position
    only, a one-token decoding step everywhere; "all" steers all but position 0."""
    sae = random_sae(lm.d_model, 16)
    x = lm.residual(ids, LAYER).float()                                   # [1, T, d]
    plan = resolve([Intervention(4, "add", 3.0)], 16)
    gen = steering_fn(sae, plan, positions="generated")(x)
    torch.testing.assert_close(gen[0, :-1], x[0, :-1], atol=0, rtol=0)
    torch.testing.assert_close(gen[0, -1] - x[0, -1], 3.0 * sae.W_dec[4], atol=1e-5, rtol=1e-5)
    step = steering_fn(sae, plan, positions="generated")(x[:, -1:])
    torch.testing.assert_close(step[0, 0] - x[0, -1], 3.0 * sae.W_dec[4], atol=1e-5, rtol=1e-5)
    every = steering_fn(sae, plan, positions="all")(x)
    assert torch.equal(every[0, 0], x[0, 0]) and (every[0, 1:-1] - x[0, 1:-1]).abs().min() > 0
    with pytest.raises(ConfigError, match="positions"):
        steering_fn(sae, plan, positions="prompt")
