"""Round trips with the real SAELens (the `test` extra): every inference architecture
SAELens saves loads here with the same encode/decode, and ours load there."""

from __future__ import annotations

import pytest
import torch

sae_lens = pytest.importorskip("sae_lens", reason="SAELens is not installed (pip install -e '.[test]')")

from monosemantic.sae import SAEConfig, make_sae, save_sae  # noqa: E402
from monosemantic.sae.formats import read_sae  # noqa: E402

D, N, K = 16, 40, 4
TOL = dict(rtol=1e-5, atol=1e-5)


def _randomise(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if name != "threshold" else 0.1))
            if name == "threshold":
                p.abs_()
    return module


def _theirs(kind: str):
    s = sae_lens
    if kind == "standard":
        return s.StandardSAE(s.StandardSAEConfig(d_in=D, d_sae=N))
    if kind == "standard_no_bdec":
        return s.StandardSAE(s.StandardSAEConfig(d_in=D, d_sae=N, apply_b_dec_to_input=False))
    if kind == "topk":
        return s.TopKSAE(s.TopKSAEConfig(d_in=D, d_sae=N, k=K))
    if kind == "topk_rescaled":
        return s.TopKSAE(s.TopKSAEConfig(d_in=D, d_sae=N, k=K, rescale_acts_by_decoder_norm=True))
    if kind == "jumprelu":
        return s.JumpReLUSAE(s.JumpReLUSAEConfig(d_in=D, d_sae=N))
    if kind == "gated":
        return s.GatedSAE(s.GatedSAEConfig(d_in=D, d_sae=N))
    if kind == "gated_no_bdec":
        return s.GatedSAE(s.GatedSAEConfig(d_in=D, d_sae=N, apply_b_dec_to_input=False))
    raise ValueError(kind)


def _x(seed=1, n=64):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


def _assert_same(ours, theirs):
    """Ours encodes and decodes as SAELens's SAE does (raw units, no scale folded)."""
    x = _x()
    with torch.no_grad():
        f = theirs.encode(x)
        assert (f > 0).any()
        torch.testing.assert_close(ours.encode(x), f, **TOL)
        torch.testing.assert_close(ours.decode(ours.encode(x)), theirs.decode(f), **TOL)


@pytest.mark.parametrize("kind", ["standard", "standard_no_bdec", "topk", "topk_rescaled", "jumprelu", "gated", "gated_no_bdec"])
def test_saelens_folders_load_here_with_the_same_encode_decode(kind, tmp_path):
    theirs = _randomise(_theirs(kind)).eval()
    theirs.save_model(tmp_path / "lens")
    ours = read_sae(tmp_path / "lens").sae
    _assert_same(ours, theirs)


@pytest.mark.parametrize("trainer", ["batchtopk", "matryoshka_batchtopk"])
def test_saelens_batchtopk_inference_folders_load_here(trainer, tmp_path):
    s = sae_lens
    if trainer == "batchtopk":
        sae = s.BatchTopKTrainingSAE(s.BatchTopKTrainingSAEConfig(d_in=D, d_sae=N, k=K))
    else:
        sae = s.MatryoshkaBatchTopKTrainingSAE(s.MatryoshkaBatchTopKTrainingSAEConfig(d_in=D, d_sae=N, k=K, matryoshka_widths=[10, N]))
    _randomise(sae)
    with torch.no_grad():
        sae.topk_threshold.fill_(0.2)
    sae.save_inference_model(tmp_path / "lens")
    theirs = s.SAE.load_from_disk(tmp_path / "lens", device="cpu").eval()
    ours = read_sae(tmp_path / "lens").sae
    _assert_same(ours, theirs)


def test_expected_average_only_in_is_folded_with_the_given_scale(tmp_path):
    s = sae_lens
    theirs = _randomise(s.StandardSAE(s.StandardSAEConfig(d_in=D, d_sae=N, normalize_activations="expected_average_only_in"))).eval()
    theirs.save_model(tmp_path / "lens")
    c = 0.37                                     # SAELens fed it c·x
    ours = read_sae(tmp_path / "lens", norm_scale=c).sae
    x = _x() * 5
    with torch.no_grad():
        f = theirs.encode(c * x)
        torch.testing.assert_close(ours.encode(x), f, **TOL)
        torch.testing.assert_close(ours.decode(ours.encode(x)), theirs.decode(f) / c, **TOL)
    from monosemantic.errors import CheckpointError

    with pytest.raises(CheckpointError, match="--norm-scale"):
        read_sae(tmp_path / "lens")


@pytest.mark.parametrize("norm", ["constant_norm_rescale", "layer_norm"])
def test_per_token_normalisations_are_refused_in_one_line(norm, tmp_path):
    s = sae_lens
    theirs = s.StandardSAE(s.StandardSAEConfig(d_in=D, d_sae=N, normalize_activations=norm))
    theirs.save_model(tmp_path / "lens")
    from monosemantic.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not linear") as e:
        read_sae(tmp_path / "lens")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("arch", ["relu", "topk", "batchtopk", "jumprelu", "gated"])
def test_ours_load_in_saelens_with_the_same_encode_decode(arch, tmp_path):
    torch.manual_seed(0)
    ours = make_sae(SAEConfig(arch, d_in=D, n_latents=N, k=K, norm_scale=2.0))
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.2 * torch.randn_like(p))
        if arch == "batchtopk":
            ours.threshold.fill_(0.3)
    ours.eval()
    save_sae(ours, tmp_path / "sae", metadata={"model_name": "HuggingFaceTB/SmolLM2-135M-Instruct", "hook_layer": 15,
                                                "hook_name": "blocks.15.hook_resid_post", "context_size": 128, "prepend_bos": True})
    theirs = sae_lens.SAE.load_from_disk(tmp_path / "sae", device="cpu").eval()
    x = _x() * 3                                 # raw units: the saved SAE has the scale folded in
    with torch.no_grad():
        f_ours = ours.encode(2.0 * x)
        assert (f_ours > 0).any()
        torch.testing.assert_close(theirs.encode(x), f_ours, **TOL)
        torch.testing.assert_close(theirs.decode(theirs.encode(x)), ours.decode(f_ours) / 2.0, **TOL)
    assert theirs.cfg.metadata.model_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert theirs.cfg.metadata.context_size == 128 and theirs.cfg.metadata.prepend_bos is True
