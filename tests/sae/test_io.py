"""save_sae/load_sae: raw-unit folding, SAELens's formulas, atomic overwrite, errors."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from monosemantic.errors import CheckpointError
from monosemantic.sae import ARCHITECTURES, SAEConfig, load_sae, make_sae, save_sae
from monosemantic.sae import io as sae_io


def _trained_like(arch, s=2.5, d=8, n=24, k=3, seed=0):
    """An SAE with non-trivial parameters, 'trained' on s·x."""
    torch.manual_seed(seed)
    sae = make_sae(SAEConfig(arch, d_in=d, n_latents=n, k=k, norm_scale=s))
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.1 * torch.randn_like(p))
        if arch == "batchtopk":
            sae.threshold.fill_(0.2)
            sae.threshold_updates.fill_(5)
    return sae.eval()


def _saelens_forward(directory, x):
    """SAELens's encode/decode, written from its formulas and the saved files only."""
    cfg = json.loads((directory / "cfg.json").read_text())
    t = load_file(str(directory / "sae_weights.safetensors"))
    sae_in = x - t["b_dec"] if cfg["apply_b_dec_to_input"] else x
    pre = sae_in @ t["W_enc"] + t["b_enc"]
    if cfg["architecture"] == "standard":
        f = pre.relu()
    elif cfg["architecture"] == "topk":
        top = pre.topk(cfg["k"], dim=-1)
        f = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
    elif cfg["architecture"] == "jumprelu":
        f = pre.relu() * (pre > t["threshold"])
    else:
        raise AssertionError(cfg["architecture"])
    return f, f @ t["W_dec"] + t["b_dec"]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_round_trip_in_raw_units_and_saelens_formula(arch, tmp_path):
    s = 2.5
    sae = _trained_like(arch, s=s)
    x = torch.randn(20, 8) * 3                                         # raw activations
    f_train = sae.encode(s * x)                                        # what training saw
    xhat_raw = sae.decode(f_train) / s
    assert (f_train > 0).any()

    save_sae(sae, tmp_path / "sae", metadata={"model_name": "tiny", "hook_name": "blocks.1.hook_resid_post", "hook_layer": 1})
    loaded = load_sae(tmp_path / "sae")
    assert type(loaded) is type(sae) and loaded.cfg.norm_scale == 1.0 and loaded.folded_norm_scale == s
    assert loaded.cfg.architecture == arch and not loaded.training
    torch.testing.assert_close(loaded.encode(x), f_train, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loaded.decode(loaded.encode(x)), xhat_raw, rtol=1e-5, atol=1e-5)

    f_lens, xhat_lens = _saelens_forward(tmp_path / "sae", x)
    torch.testing.assert_close(f_lens, f_train, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xhat_lens, xhat_raw, rtol=1e-5, atol=1e-5)

    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["d_in"] == 8 and cfg["d_sae"] == 24 and cfg["dtype"] == "float32" and cfg["device"] == "cpu"
    assert cfg["normalize_activations"] == "none"
    assert cfg["metadata"]["hook_layer"] == 1 and cfg["model_name"] == "tiny"
    assert cfg["monosemantic"]["architecture"] == arch and cfg["monosemantic"]["folded_norm_scale"] == s


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_folding_by_a_power_of_two_is_bit_exact(arch, tmp_path):
    sae = _trained_like(arch, s=2.0)
    x = torch.randn(16, 8)
    save_sae(sae, tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert torch.equal(loaded.pre_acts(x), sae.pre_acts(2 * x))
    assert torch.equal(loaded.encode(x), sae.encode(2 * x))
    f = sae.encode(2 * x)
    assert torch.equal(loaded.decode(f), sae.decode(f) / 2)


def test_saved_topk_has_saelens_keys_and_resave_keeps_trained_scale(tmp_path):
    sae = _trained_like("topk", s=4.0)
    save_sae(sae, tmp_path / "a")
    cfg = json.loads((tmp_path / "a" / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 3 and cfg["apply_b_dec_to_input"] is True
    assert cfg["rescale_acts_by_decoder_norm"] is False
    assert set(load_file(str(tmp_path / "a" / "sae_weights.safetensors"))) == {"W_enc", "W_dec", "b_enc", "b_dec"}
    save_sae(load_sae(tmp_path / "a"), tmp_path / "b")
    assert load_sae(tmp_path / "b").folded_norm_scale == 4.0
    relu = json.loads((save_sae(_trained_like("relu"), tmp_path / "r") / "cfg.json").read_text())
    assert relu["architecture"] == "standard" and relu["apply_b_dec_to_input"] is False
    btk = json.loads((save_sae(_trained_like("batchtopk"), tmp_path / "t") / "cfg.json").read_text())
    assert btk["architecture"] == "jumprelu" and btk["apply_b_dec_to_input"] is True


def test_overwrite_is_atomic(tmp_path, monkeypatch):
    first, second = _trained_like("relu", seed=1), _trained_like("relu", seed=2)
    target = tmp_path / "run" / "sae"
    save_sae(first, target)
    save_sae(second, target)                                           # replaces
    torch.testing.assert_close(load_sae(target).W_dec, second.W_dec / second.cfg.norm_scale)

    def crash(*a, **k):
        raise RuntimeError("killed mid-write")
    monkeypatch.setattr(sae_io, "save_file", crash)
    with pytest.raises(RuntimeError):
        save_sae(first, target)
    torch.testing.assert_close(load_sae(target).W_dec, second.W_dec / second.cfg.norm_scale)  # old one intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["sae"]  # no temp dirs left
    monkeypatch.undo()
    with pytest.raises(RuntimeError):
        monkeypatch.setattr(sae_io, "save_file", crash)
        save_sae(first, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_loads_a_plain_saelens_standard_directory(tmp_path):
    # SAELens "standard" subtracts b_dec; our relu does not: load moves it into b_enc.
    torch.manual_seed(0)
    d, n = 6, 10
    t = {"W_enc": torch.randn(d, n), "W_dec": torch.randn(n, d), "b_enc": torch.randn(n), "b_dec": torch.randn(d)}
    (tmp_path / "lens").mkdir()
    save_file(t, str(tmp_path / "lens" / "sae_weights.safetensors"))
    (tmp_path / "lens" / "cfg.json").write_text(json.dumps(
        {"architecture": "standard", "d_in": d, "d_sae": n, "apply_b_dec_to_input": True, "normalize_activations": "none"}))
    sae = load_sae(tmp_path / "lens")
    x = torch.randn(5, d)
    f_lens, xhat_lens = _saelens_forward(tmp_path / "lens", x)
    torch.testing.assert_close(sae.encode(x), f_lens, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae.decode(sae.encode(x)), xhat_lens, rtol=1e-5, atol=1e-5)


def _edit_cfg(directory, fn):
    path = directory / "cfg.json"
    cfg = json.loads(path.read_text())
    fn(cfg)
    path.write_text(json.dumps(cfg))


@pytest.mark.parametrize("breakage, match", [
    (lambda d: None, None),
    (lambda d: (d / "cfg.json").unlink(), "cfg.json: missing"),
    (lambda d: (d / "cfg.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "sae_weights.safetensors").unlink(), "sae_weights.safetensors: missing"),
    (lambda d: (d / "sae_weights.safetensors").write_bytes((d / "sae_weights.safetensors").read_bytes()[:50]), "corrupt"),
    (lambda d: _edit_cfg(d, lambda c: c["monosemantic"].update(architecture="mystery")), "unknown architecture"),
    (lambda d: _edit_cfg(d, lambda c: c["monosemantic"]["config"].update(n_latents=25)), "shape"),
    (lambda d: _edit_cfg(d, lambda c: c["monosemantic"]["config"].update(k=0)), "k must"),
    (lambda d: save_file({"W_enc": torch.zeros(8, 24)}, str(d / "sae_weights.safetensors")), "no tensor 'W_dec'"),
])
def test_broken_directories_raise_checkpoint_error(breakage, match, tmp_path):
    directory = save_sae(_trained_like("jumprelu"), tmp_path / "sae")
    breakage(directory)
    if match is None:
        load_sae(directory)
        return
    with pytest.raises(CheckpointError, match=match):
        load_sae(directory)


def test_missing_directory_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no SAE directory"):
        load_sae(tmp_path / "nowhere")
