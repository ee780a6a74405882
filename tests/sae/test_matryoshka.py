"""Matryoshka BatchTopK: its loss by hand, its fast prefix decode against the plain
one, prefixes that reconstruct in order of importance, and SAELens loading it."""

from __future__ import annotations

import pytest
import torch

from monosemantic.errors import ConfigError
from monosemantic.evals.synthetic import SyntheticConfig, SyntheticDictionary
from monosemantic.sae import SAEConfig, load_sae, make_sae, save_sae
from monosemantic.sae.matryoshka import MatryoshkaConfig, prefix_decode, resolve_widths
from monosemantic.train import TrainConfig, TrainJob, train_many


def test_loss_by_hand_on_a_tiny_case():
    sae = make_sae(MatryoshkaConfig("matryoshka", d_in=2, n_latents=4, k=2, matryoshka_widths=[1, 2, 4]))
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.25]]))
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    # pre = [[1, 2, .5, .5], [3, 0, 1.5, 0]]; the batch's top 2·2: 3, 2, 1.5, 1
    # -> f = [[1, 2, 0, 0], [3, 0, 1.5, 0]].
    # prefix 1: x̂ = [1,0], [3,0]        errors 4, 0    -> mean 2
    # prefix 2: x̂ = [1,2], [3,0]        errors 0, 0    -> 0
    # prefix 4: x̂ = [1,2], [4.5,1.5]    errors 0, 4.5  -> 2.25
    out = sae(x)
    assert out.loss.item() == pytest.approx(2 + 0 + 2.25)
    assert out.terms["mse"].item() == pytest.approx(2.25)
    assert out.terms["mse_prefix_1"].item() == pytest.approx(2.0) and out.terms["mse_prefix_2"].item() == pytest.approx(0.0)
    torch.testing.assert_close(out.x_hat, torch.tensor([[1.0, 2.0], [4.5, 1.5]]))
    assert out.n_active.tolist() == [2, 2]


def test_fast_prefix_decode_equals_the_plain_one_values_and_gradients():
    torch.manual_seed(0)
    B, m, n, d, widths = 12, 5, 40, 6, [3, 10, 40]
    idx = torch.stack([torch.randperm(n)[:m] for _ in range(B)])
    vals = torch.rand(B, m) * (torch.rand(B, m) > 0.2)                    # some zeros, as BatchTopK's padding
    W = torch.randn(n, d)
    grads = []
    outs = []
    for dense in (False, True):
        v, w = vals.clone().requires_grad_(), W.clone().requires_grad_()
        out = prefix_decode(v, idx, w, widths, dense=dense)              # [B, G, d]
        (out * torch.arange(1.0, 4.0)[None, :, None]).pow(2).sum().backward()
        outs.append(out.detach())
        grads.append((v.grad * (vals != 0), w.grad))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for fast, plain in zip(*grads):
        torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)


def test_widths_are_checked():
    assert resolve_widths(None, 4096) == [64, 256, 1024, 4096]
    assert resolve_widths([8, 32], 64) == [8, 32, 64]
    for bad in ([8, 8], [0, 8], [100]):
        with pytest.raises(ConfigError, match="matryoshka_widths"):
            make_sae(MatryoshkaConfig("matryoshka", d_in=4, n_latents=64, k=2, matryoshka_widths=bad))


def _prefix_fve(sae, x: torch.Tensor, width: int) -> float:
    f = sae.encode(x)
    f[:, width:] = 0
    return float(1 - (x - sae.decode(f)).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


@pytest.mark.slow   # two SAEs trained 150 steps: ~10 s unloaded, minutes on a shared machine
def test_prefixes_reconstruct_in_order_of_importance_on_a_synthetic_dictionary():
    truth = SyntheticDictionary(SyntheticConfig(d=32, n_true=96, mean_active=6.0))
    cfg = TrainConfig(n_tokens=256 * 150, batch_size=256, lr=3e-3, log_every=50, checkpoint_every=0, dtype="float32")
    widths = [8, 32, 128]
    mat, btk = train_many(truth.batches(256), [TrainJob(MatryoshkaConfig("matryoshka", 32, 128, k=6, matryoshka_widths=widths), cfg),
                                                TrainJob(SAEConfig("batchtopk", 32, 128, k=6), cfg)], progress=False)
    x = torch.from_numpy(truth.rows(4000, stream=-2))
    mat.sae.eval(), btk.sae.eval()
    with torch.no_grad():
        fve = [_prefix_fve(mat.sae, x, w) for w in widths]
        btk_first = _prefix_fve(btk.sae, x, widths[0])
        fired = (mat.sae.encode(x) > 0).float().mean(0)                 # [n] firing frequency
    assert fve[0] < fve[1] < fve[2], fve
    assert fve[0] > btk_first + 0.15, f"the first 8 latents alone: matryoshka FVE {fve[0]:.3f}, batchtopk {btk_first:.3f}"
    assert fired[:8].mean() > 2 * fired[32:].mean(), "the first latents are the frequent ones"
    assert fve[2] > 0.6


def test_saved_as_saelens_saves_its_matryoshka_saes(tmp_path):
    sae = make_sae(MatryoshkaConfig("matryoshka", d_in=8, n_latents=32, k=3, matryoshka_widths=[4, 16], norm_scale=2.0))
    with torch.no_grad():
        sae.threshold.fill_(0.1)
        sae.threshold_updates.fill_(3)
        sae.b_enc.add_(0.05)
    save_sae(sae.eval(), tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert loaded.cfg.architecture == "matryoshka" and loaded.widths == [4, 16, 32]
    x = torch.randn(10, 8)
    torch.testing.assert_close(loaded.encode(x), sae.encode(2.0 * x), rtol=1e-5, atol=1e-5)
    sae_lens = pytest.importorskip("sae_lens")
    lens = sae_lens.SAE.load_from_disk(str(tmp_path / "sae"), device="cpu")
    assert lens.cfg.architecture() == "jumprelu"
    torch.testing.assert_close(lens.encode(x), loaded.encode(x), rtol=1e-5, atol=1e-5)
