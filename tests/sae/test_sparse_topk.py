"""The sparse TopK path equals the plain dense reference, values and gradients."""

import pytest
import torch

from monosemantic.sae.sparse_topk import gather_encode, sparse_decode, topk_encode


def _params(B=6, d=5, n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    x = mk(B, d)
    W_enc, b_enc, b_dec, W_dec = mk(d, n), mk(n) * 0.1, mk(d) * 0.1, mk(n, d)
    return x, W_enc, b_enc, b_dec, W_dec


def _run(dense, k=3, subtract=True):
    x, W_enc, b_enc, b_dec, W_dec = _params()
    leaves = [t.requires_grad_() for t in (x, W_enc, b_enc, b_dec, W_dec)]
    enc = topk_encode(x, W_enc, b_enc, b_dec if subtract else None, k, dense=dense)
    out = sparse_decode(enc.top_acts, enc.top_indices, W_dec, dense=dense)       # [B, d]
    target = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
    ((out - target) ** 2).sum().backward()
    order = enc.top_indices.argsort(1)
    return (enc.top_acts.gather(1, order).detach(), enc.top_indices.gather(1, order), out.detach(),
            [t.grad.clone() if t.grad is not None else None for t in leaves])


def test_fast_equals_dense_forward_and_all_gradients():
    for subtract in (True, False):
        a_f, i_f, o_f, g_f = _run(False, subtract=subtract)
        a_d, i_d, o_d, g_d = _run(True, subtract=subtract)
        assert torch.equal(i_f, i_d)
        torch.testing.assert_close(a_f, a_d)
        torch.testing.assert_close(o_f, o_d)
        for gf, gd, name in zip(g_f, g_d, ["x", "W_enc", "b_enc", "b_dec", "W_dec"]):
            if not subtract and name == "b_dec":
                assert gf is None and gd is None
                continue
            torch.testing.assert_close(gf, gd, msg=name)


def test_unselected_decoder_rows_and_encoder_columns_get_exactly_zero_grad():
    x, W_enc, b_enc, b_dec, W_dec = _params()
    W_enc.requires_grad_()
    W_dec.requires_grad_()
    enc = topk_encode(x, W_enc, b_enc, b_dec, 2)
    sparse_decode(enc.top_acts, enc.top_indices, W_dec).pow(2).sum().backward()
    selected = torch.zeros(W_dec.shape[0], dtype=torch.bool)
    selected[enc.top_indices.flatten()] = True
    assert (~selected).any()
    assert torch.all(W_dec.grad[~selected] == 0)
    assert torch.all(W_enc.grad[:, ~selected] == 0)
    assert W_dec.grad[selected].abs().sum() > 0


def test_gather_encode_with_repeated_indices_matches_dense():
    # BatchTopK pads rows with index 0 (mask 0); repeated indices must stay exact.
    x, W_enc, b_enc, b_dec, W_dec = _params()
    idx = torch.tensor([[0, 0, 3], [5, 0, 0], [1, 2, 3], [0, 0, 0], [7, 0, 11], [4, 0, 0]])
    mask = torch.tensor([[1, 0, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)
    grads = []
    for dense in (False, True):
        leaves = [t.detach().clone().requires_grad_() for t in (x, W_enc, b_enc, b_dec, W_dec)]
        xx, we, be, bd, wd = leaves
        vals = gather_encode(xx, we, be, bd, idx, dense=dense).relu() * mask
        sparse_decode(vals, idx, wd, dense=dense).pow(2).sum().backward()
        grads.append([t.grad for t in leaves])
    for gf, gd in zip(*grads):
        torch.testing.assert_close(gf, gd)


def test_weight_gradients_under_bf16_autocast_are_float32_and_within_bf16_rounding():
    # Under autocast the two weight-gradient sums read bfloat16 rows (x3.5 faster on
    # the CPU); the gradients stay float32 and within bfloat16's rounding of the
    # float32 ones, and differ from them (the bfloat16 path really ran).
    torch.manual_seed(0)
    B, d, n, k = 256, 64, 512, 8
    x, W_enc, b_enc, b_dec, W_dec = torch.randn(B, d), torch.randn(d, n), torch.randn(n) * 0.1, torch.randn(d) * 0.1, torch.randn(n, d)
    idx = torch.randn(B, n).topk(k, dim=1).indices
    grads = []
    for autocast in (False, True):
        we, wd = W_enc.clone().requires_grad_(), W_dec.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            vals = gather_encode(x, we, b_enc, b_dec, idx)
            out = sparse_decode(vals, idx, wd)
        out.float().pow(2).sum().backward()
        grads.append((we.grad, wd.grad))
    for g32, g16 in zip(*grads):
        assert g16.dtype == torch.float32
        assert not torch.equal(g16, g32)
        assert float((g16 - g32).norm() / g32.norm()) < 1e-2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_fast_equals_dense_on_gpu_float32():
    torch.manual_seed(0)
    B, d, n, k = 64, 32, 256, 8
    base = [torch.randn(B, d), torch.randn(d, n), torch.randn(n) * 0.1, torch.randn(d) * 0.1, torch.randn(n, d)]
    grads = []
    for dense in (False, True):
        leaves = [t.cuda().requires_grad_() for t in base]
        x, W_enc, b_enc, b_dec, W_dec = leaves
        enc = topk_encode(x, W_enc, b_enc, b_dec, k, dense=dense)
        sparse_decode(enc.top_acts, enc.top_indices, W_dec, dense=dense).pow(2).sum().backward()
        grads.append([t.grad for t in leaves])
    for gf, gd in zip(*grads):
        torch.testing.assert_close(gf, gd, rtol=1e-4, atol=1e-4)
