"""The fast TopK-family training step equals a plain dense reference step.

Fast: the SAE's own forward (sae/sparse_topk.py: grouped top-k selection, sparse
backward, b_dec's gradient as one matrix-vector product), its before_step/after_step
hooks and the loop's fused Adam. Reference: the paper's step written out with
autograd on dense [B, n] tensors and torch's plain Adam. Float64 and several steps,
so any difference in a gradient shows up in the weights (the loss itself is float32
on both sides, as `mse_term` computes it, hence a float32-level tolerance)."""

import pytest
import torch

from monosemantic.sae import SAEConfig
from monosemantic.sae.base import mse_term
from monosemantic.sae.registry import make_sae
from monosemantic.train.loop import _adam

B, D, N, K, LR, STEPS = 48, 16, 256, 4, 1e-3, 4


def _reference_step(p: dict, x: torch.Tensor, arch: str, opt: torch.optim.Optimizer) -> torch.Tensor:
    pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]                      # [B, n]
    if arch == "topk":
        vals, idx = pre.topk(K, dim=1)
        f = torch.zeros_like(pre).scatter(1, idx, vals.relu())
    else:  # batchtopk: the K·B largest ReLU pre-activations of the whole batch
        r = pre.relu()
        keep = torch.zeros(r.numel(), dtype=torch.bool)
        keep[r.flatten().topk(K * B).indices] = True
        f = r * keep.view_as(r)
    x_hat = f @ p["W_dec"] + p["b_dec"]
    loss = mse_term(x_hat, x)           # ‖x − x̂‖² in float32, as every architecture's loss
    opt.zero_grad()
    loss.backward()
    with torch.no_grad():
        w, g = p["W_dec"], p["W_dec"].grad
        w_unit = w / w.norm(dim=1, keepdim=True)
        g -= (g * w_unit).sum(1, keepdim=True) * w_unit                  # no gradient along a row
    torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
    opt.step()
    with torch.no_grad():
        p["W_dec"] /= p["W_dec"].norm(dim=1, keepdim=True)               # back on the unit sphere
    return loss.detach()


def _fast_step(sae, x: torch.Tensor, opt: torch.optim.Optimizer) -> torch.Tensor:
    out = sae(x)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    sae.before_step()
    torch.nn.utils.clip_grad_norm_(list(sae.parameters()), 1.0)
    opt.step()
    sae.after_step()
    return out.loss.detach()


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_fast_step_equals_plain_dense_step(arch):
    torch.manual_seed(0)
    sae = make_sae(SAEConfig(architecture=arch, d_in=D, n_latents=N, k=K)).double()
    xs = [torch.randn(B, D, dtype=torch.float64) * 2 + 0.5 for _ in range(STEPS)]
    sae.init_from_data(xs[0])
    ref = {name: t.detach().clone().requires_grad_() for name, t in sae.named_parameters()}
    start = {name: t.detach().clone() for name, t in ref.items()}
    ref_opt = torch.optim.Adam(list(ref.values()), lr=LR, foreach=False)
    fast_opt = _adam(sae, LR)
    for x in xs:
        torch.testing.assert_close(_fast_step(sae, x, fast_opt), _reference_step(ref, x, arch, ref_opt), rtol=1e-6, atol=1e-6)
    for name, t in sae.named_parameters():
        torch.testing.assert_close(t.detach(), ref[name].detach(), rtol=1e-6, atol=1e-8, msg=name)
        assert not torch.allclose(t.detach(), start[name]), f"{name} never moved: the comparison would prove nothing"
        for key, moment in fast_opt.state[t].items():   # checkpoints keep Adam's moments in the parameter's layout
            if moment.dim():
                assert moment.shape == t.shape and moment.stride() == t.stride(), (name, key)


def test_grouped_selection_is_the_exact_top_k():
    from monosemantic.sae.sparse_topk import select_topk

    torch.manual_seed(1)
    for rows, n, k in [(4, 8192, 16), (33, 1024, 32), (8, 256, 4), (5, 96, 7), (3, 100, 5)]:   # two levels, one, plain
        pre = torch.randn(rows, n)
        idx = select_topk(pre, k)
        assert idx.shape == (rows, k) and (idx.sort(1).values.diff(1) > 0).all()   # k distinct latents
        torch.testing.assert_close(pre.gather(1, idx).sort(1, descending=True).values, pre.topk(k, dim=1).values, rtol=0, atol=0)


def test_grouped_batch_selection_is_the_exact_top_k_of_the_batch():
    from monosemantic.sae.sparse_topk import select_batch_topk

    torch.manual_seed(2)
    for rows, n, K in [(64, 512, 64 * 4), (8, 256, 8 * 4), (3, 100, 20)]:        # grouped, and the plain fallback
        pre = torch.randn(rows, n)
        flat = select_batch_topk(pre, K)
        assert flat.shape == (K,) and flat.unique().numel() == K
        torch.testing.assert_close(pre.flatten()[flat].sort(descending=True).values, pre.flatten().topk(K).values, rtol=0, atol=0)
