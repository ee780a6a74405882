"""Each architecture: hand-computed loss terms, training on a known sparse
dictionary, hooks, config errors, bf16 autocast."""

import math

import pytest
import torch

from monosemantic.errors import ConfigError
from monosemantic.sae import ARCHITECTURES, SAEConfig, make_sae
from monosemantic.sae.registry import ALL_ARCHITECTURES
from monosemantic.sae.batchtopk import BatchTopKSAE


def _set(sae, **tensors):
    with torch.no_grad():
        for name, value in tensors.items():
            getattr(sae, name).copy_(torch.tensor(value, dtype=torch.float32))


def _two_by_three(arch, **kw):
    sae = make_sae(SAEConfig(arch, d_in=3, n_latents=2, **kw))
    _set(sae, W_enc=[[1, 0], [0, 1], [0, 0]], b_enc=[0, 0], W_dec=[[1, 0, 0], [0, 1, 0]], b_dec=[0, 0, 0])
    return sae


def test_relu_terms_by_hand():
    sae = make_sae(SAEConfig("relu", d_in=3, n_latents=2, l1_coefficient=5.0))
    _set(sae, W_enc=[[1, 0], [0, 1], [0, 0]], b_enc=[0, -1], W_dec=[[1, 0, 0], [0, 2, 0]], b_dec=[0, 0, 1])
    x = torch.tensor([[1.0, 0, 0], [0, 2, 0]])
    # f = [[1, 0], [0, 1]]; x̂ = [[1,0,1],[0,2,1]]; ‖x−x̂‖² = 1 per row; Σ fᵢ‖W_dec,i‖ = 1 and 2.
    out = sae(x, sparsity_scale=0.5)
    assert out.terms["mse"].item() == pytest.approx(1.0)
    assert out.terms["l1"].item() == pytest.approx(1.5)
    assert out.loss.item() == pytest.approx(1.0 + 5.0 * 0.5 * 1.5)
    assert out.n_active.tolist() == [1, 1] and out.fired.tolist() == [True, True]
    torch.testing.assert_close(out.acts, torch.tensor([[1.0, 0], [0, 1]]))


def test_topk_terms_by_hand_with_auxk():
    sae = _two_by_three("topk", k=1, aux_k=1)
    x = torch.tensor([[1.0, 0.5, 0], [0, 2, 1]])
    # row 0 keeps latent 0 (1.0): err [0,.5,0] -> .25; row 1 keeps latent 1 (2.0): err [0,0,1] -> 1.
    # AuxK with latent 0 dead: ê = [[1,0,0],[0,0,0]]; ‖e−ê‖² = 1.25 + 1; ‖e−ē‖² = .3125·2.
    out = sae(x, dead_mask=torch.tensor([True, False]))
    assert out.terms["mse"].item() == pytest.approx(0.625)
    assert out.terms["aux"].item() == pytest.approx(2.25 / 0.625)
    assert out.loss.item() == pytest.approx(0.625 + 3.6 / 32)
    assert out.n_active.tolist() == [1, 1]
    assert sae(x).terms["aux"].item() == 0.0                          # no dead_mask -> no AuxK
    assert sae(x, dead_mask=torch.tensor([False, False])).terms["aux"].item() == 0.0


def test_batchtopk_terms_by_hand_and_threshold():
    sae = _two_by_three("batchtopk", k=1)
    x = torch.tensor([[3.0, 2.5, 0], [0, 1, 1]])
    # k·B = 2 largest over the batch: 3 and 2.5, both in row 0; row 1 reconstructs to 0.
    out = sae(x)
    assert out.n_active.tolist() == [2, 0]
    assert out.terms["mse"].item() == pytest.approx(1.0)
    assert sae.threshold.item() == pytest.approx(2.5)                # first batch sets θ
    sae(x)
    assert sae.threshold.item() == pytest.approx(2.5)
    sae.eval()
    torch.testing.assert_close(sae.encode(x), torch.tensor([[3.0, 0], [0, 0]]))  # 2.5 is not > θ


def test_jumprelu_terms_by_hand_and_threshold_gradient():
    sae = _two_by_three("jumprelu", l0_coefficient=1.0, jumprelu_bandwidth=0.1)
    _set(sae, log_threshold=[math.log(0.5), math.log(0.5)])
    x = torch.tensor([[1.0, 0.3, 0], [0, 2, 1]])
    out = sae(x)
    # f = [[1, 0], [0, 2]]: err .09 and 1; L0 = 1 per row.
    assert out.terms["mse"].item() == pytest.approx(0.545)
    assert out.terms["l0"].item() == pytest.approx(1.0)
    assert out.loss.item() == pytest.approx(1.545)
    # Pre-activation 0.52 is inside θ ± ε/2: the L0 term pushes θ₁ up, dL0/dθ = −(1/ε)/B.
    x = torch.tensor([[0.0, 0.52, 0]])
    sae.zero_grad()
    out = sae(x)
    out.loss.backward()
    g = sae.log_threshold.grad
    assert g[0].item() == 0.0
    # loss = mse(x̂ = [0,.52,0] vs x) = 0 + L0; d/dθ: JumpReLU −(θ/ε)·∂mse/∂f (=0 here) + step −1/ε; times dθ/dlogθ = θ.
    assert g[1].item() == pytest.approx(-0.5 / 0.1)


def test_jumprelu_preact_loss_reaches_a_latent_below_its_threshold():
    x = torch.tensor([[1.0, 0.2, 0]])                  # pre = [1, 0.2]; θ = 0.5: latent 1 never fires
    grads = {}
    for coefficient in (0.0, 0.25):
        sae = _two_by_three("jumprelu", jumprelu_bandwidth=0.1, jumprelu_preact_coefficient=coefficient)
        _set(sae, log_threshold=[math.log(0.5), math.log(0.5)])
        out = sae(x)
        out.loss.backward()
        grads[coefficient] = sae.b_enc.grad.clone()
        if coefficient:
            assert out.terms["preact"].item() == pytest.approx(0.3)      # ReLU(0.5 − 0.2)
    assert grads[0.0][1].item() == 0.0                 # without it the dead latent's encoder gets nothing
    assert grads[0.25][1].item() == pytest.approx(-0.25)  # with it, a push up of exactly λₚ
    assert grads[0.25][0].item() == pytest.approx(grads[0.0][0].item())  # a firing latent is unaffected


def _synthetic(n_atoms=24, d=16, B=256, active=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n_atoms, d, generator=g)
    D = D / D.norm(dim=1, keepdim=True)                               # known dictionary
    idx = torch.rand(B, n_atoms, generator=g).topk(active, dim=1).indices
    coef = torch.zeros(B, n_atoms).scatter_(1, idx, 1 + torch.rand(B, active, generator=g))
    return coef @ D + 0.3                                               # offset so b_dec matters


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_loss_decreases_on_known_sparse_dictionary(arch):
    torch.manual_seed(0)
    x = _synthetic()
    kw = dict(k=4, l1_coefficient=0.1, l0_coefficient=0.01, jumprelu_init_threshold=0.01)
    sae = make_sae(SAEConfig(arch, d_in=16, n_latents=32, **kw))
    sae.init_from_data(x)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    seen = torch.zeros(32, dtype=torch.bool)
    losses = []
    for step in range(50):
        out = sae(x, sparsity_scale=min(1.0, (step + 1) / 10), dead_mask=~seen if step > 10 else None)
        seen |= out.fired
        opt.zero_grad()
        out.loss.backward()
        sae.before_step()
        opt.step()
        sae.after_step()
        losses.append(out.terms["mse"].item())
        assert math.isfinite(out.loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_init_from_data_is_deterministic(arch):
    x = _synthetic(seed=1)
    a = make_sae(SAEConfig(arch, d_in=16, n_latents=32, k=4))
    b = make_sae(SAEConfig(arch, d_in=16, n_latents=32, k=4))
    a.init_from_data(x)
    b.init_from_data(x)
    assert torch.equal(a.b_dec, b.b_dec)
    # relu, the topk family and jumprelu (centred init, test_jumprelu_dead.py): the geometric median, not 0
    assert a.b_dec.abs().sum() > 0


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "jumprelu"])
def test_decoder_hooks_keep_unit_norm_rows(arch):
    sae = make_sae(SAEConfig(arch, d_in=8, n_latents=16, k=2))
    sae(torch.randn(32, 8)).loss.backward()
    sae.before_step()
    w = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True)
    assert (sae.W_dec.grad * w).sum(1).abs().max() < 1e-5             # no radial component left
    with torch.no_grad():
        sae.W_dec.mul_(3.0)
    sae.after_step()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(16))


def test_relu_decoder_is_not_normalised():
    sae = make_sae(SAEConfig("relu", d_in=8, n_latents=16))
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.full((16,), 0.1))
    torch.testing.assert_close(sae.W_enc, sae.W_dec.t())
    with torch.no_grad():
        sae.W_dec.mul_(3.0)
    sae.after_step()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.full((16,), 0.3))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_encode_matches_training_acts_and_bf16_autocast_runs(arch):
    torch.manual_seed(0)
    sae = make_sae(SAEConfig(arch, d_in=8, n_latents=16, k=3))
    x = torch.randn(10, 8)
    out = sae(x)
    if not isinstance(sae, BatchTopKSAE):   # batchtopk's (and matryoshka's) encode uses the learnt threshold instead of the batch
        torch.testing.assert_close(sae.encode(x), out.acts.detach())
    assert out.acts.shape == (10, 16) and out.fired.dtype == torch.bool and out.n_active.shape == (10,)
    torch.testing.assert_close(sae.decode(out.acts), out.x_hat, atol=1e-5, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sae(x, dead_mask=torch.ones(16, dtype=torch.bool))
    out.loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in sae.parameters())
    assert all(p.dtype == torch.float32 for p in sae.parameters())


@pytest.mark.parametrize("change, match", [
    (dict(architecture="mystery"), "unknown architecture"),
    (dict(n_latents=0), "n_latents"),
    (dict(k=0), "k must"),
    (dict(k=100), "larger than n_latents"),
    (dict(l1_coefficient=-1.0), "l1_coefficient"),
    (dict(aux_coefficient=float("nan")), "aux_coefficient"),
    (dict(norm_scale=0.0), "norm_scale"),
    (dict(jumprelu_bandwidth=float("inf")), "jumprelu_bandwidth"),
    (dict(aux_k=0), "aux_k"),
])
def test_bad_config_raises_config_error(change, match):
    cfg = dict(architecture="topk", d_in=8, n_latents=16, k=4) | change
    with pytest.raises(ConfigError, match=match):
        make_sae(SAEConfig(**cfg))


@pytest.mark.parametrize("arch", sorted(ALL_ARCHITECTURES))
def test_encode_accepts_inference_mode_and_bf16_residuals(arch):
    # What LanguageModel.residual returns: read under torch.inference_mode, in the
    # model's dtype (bf16 where the CPU has it). Grad mode stays on, as in a notebook.
    sae = make_sae(SAEConfig(arch, d_in=16, n_latents=32, k=4))
    with torch.inference_mode():
        x = torch.randn(2, 5, 16)
    f = sae.encode(x)                                                  # no "Inference tensors cannot be saved"
    assert f.shape == (2, 5, 32) and f.dtype == torch.float32
    torch.testing.assert_close(sae.encode(x.bfloat16()), sae.encode(x.bfloat16().float()))
    assert sae.decode(f.bfloat16()).dtype == torch.float32
