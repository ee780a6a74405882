"""Round trips with the real sparsify (EleutherAI, the `test` extra): a
`SparseCoder.save_to_disk` folder loads here with the same encode/decode, and
`monosemantic export --format sparsify` loads there."""

from __future__ import annotations

import pytest
import torch

sparsify = pytest.importorskip("sparsify", reason="sparsify is not installed (pip install -e '.[test]')")

from monosemantic.errors import CheckpointError, ConfigError  # noqa: E402
from monosemantic.sae import SAEConfig, make_sae  # noqa: E402
from monosemantic.sae.formats import read_sae  # noqa: E402
from monosemantic.sae.formats.sparsify import write_sparsify  # noqa: E402

D, N, K = 16, 48, 5
TOL = dict(rtol=1e-5, atol=1e-5)


def _dense(out, n):
    return torch.zeros(out.top_acts.shape[0], n).scatter_(-1, out.top_indices, out.top_acts)


def _coder(**cfg):
    torch.manual_seed(0)
    coder = sparsify.SparseCoder(D, sparsify.SparseCoderConfig(num_latents=N, k=K, **cfg))
    with torch.no_grad():
        for p in coder.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return coder


def test_a_sparsify_folder_loads_here_with_the_same_encode_decode(tmp_path):
    coder = _coder()
    coder.save_to_disk(tmp_path / "run" / "layers.15")   # what sparsify's trainer writes per hookpoint
    imported = read_sae(tmp_path / "run")                 # the run folder holds one hookpoint
    ours = imported.sae
    assert imported.metadata["hook_layer"] == 15 and imported.source["format"] == "sparsify"
    x = torch.randn(64, D)
    with torch.no_grad():
        out = coder.encode(x)
        f = _dense(out, N)
        torch.testing.assert_close(ours.encode(x), f, **TOL)
        torch.testing.assert_close(ours.decode(ours.encode(x)), coder.decode(out.top_acts, out.top_indices), **TOL)


def test_ours_export_loads_in_sparsify(tmp_path):
    torch.manual_seed(1)
    ours = make_sae(SAEConfig("topk", d_in=D, n_latents=N, k=K, norm_scale=2.0)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.2 * torch.randn_like(p))
    folder = write_sparsify(ours, tmp_path / "out", "layers.15")
    coder = sparsify.SparseCoder.load_from_disk(folder)
    x = torch.randn(64, D) * 3                            # raw units: the scale is folded in
    with torch.no_grad():
        out = coder.encode(x)
        f_ours = ours.encode(2.0 * x)
        torch.testing.assert_close(_dense(out, N), f_ours, **TOL)
        torch.testing.assert_close(coder.decode(out.top_acts, out.top_indices), ours.decode(f_ours) / 2.0, **TOL)
    assert set(sparsify.SparseCoder.load_many(str(tmp_path / "out"), local=True)) == {"layers.15"}


def test_non_topk_export_and_transcoders_are_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="--format saelens"):
        write_sparsify(make_sae(SAEConfig("relu", d_in=D, n_latents=N)), tmp_path / "out", "layers.15")
    _coder(transcode=True).save_to_disk(tmp_path / "tc")
    with pytest.raises(CheckpointError, match="transcoder"):
        read_sae(tmp_path / "tc")
