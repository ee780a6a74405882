"""Round trips with dictionary_learning's own classes: its `ae.pt` (+ config.json)
loads here with the same encode/decode for every dictionary class it trains.

dictionary_learning's package __init__ imports nnsight 0.3 (for its activation
buffer), which pulls torchvision and a transformers-4-era API beside our pinned
torch/transformers, so it is installed with --no-deps (not in the `test` extra:
its declared dependencies cannot be installed beside our pins). The test loads its
real `dictionary.py` and `trainers/` modules without running that __init__; where
the package is absent, it skips and says so."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest
import torch

from monosemantic.errors import CheckpointError
from monosemantic.sae.formats import read_sae

D, N, K = 16, 40, 4
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def dl():
    spec = importlib.util.find_spec("dictionary_learning")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("dictionary_learning is not installed (pip install --no-deps dictionary-learning einops)")
    pytest.importorskip("einops", reason="einops is not installed (dictionary_learning's modules need it)")
    saved = {k: v for k, v in sys.modules.items() if k == "dictionary_learning" or k.startswith("dictionary_learning.")}
    package = types.ModuleType("dictionary_learning")
    package.__path__ = list(spec.submodule_search_locations)   # its modules, without its __init__ (nnsight)
    sys.modules["dictionary_learning"] = package
    try:
        yield types.SimpleNamespace(
            dictionary=importlib.import_module("dictionary_learning.dictionary"),
            top_k=importlib.import_module("dictionary_learning.trainers.top_k"),
            batch_top_k=importlib.import_module("dictionary_learning.trainers.batch_top_k"),
            matryoshka=importlib.import_module("dictionary_learning.trainers.matryoshka_batch_top_k"),
        )
    finally:
        for k in [k for k in sys.modules if k == "dictionary_learning" or k.startswith("dictionary_learning.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def _build(dl, kind):
    torch.manual_seed(0)
    if kind == "AutoEncoder":
        ae = dl.dictionary.AutoEncoder(D, N)
    elif kind == "AutoEncoderNew":
        ae = dl.dictionary.AutoEncoderNew(D, N)
    elif kind == "GatedAutoEncoder":
        ae = dl.dictionary.GatedAutoEncoder(D, N)
    elif kind == "JumpReluAutoEncoder":
        ae = dl.dictionary.JumpReluAutoEncoder(D, N)
    elif kind == "AutoEncoderTopK":
        ae = dl.top_k.AutoEncoderTopK(D, N, K)
    elif kind == "BatchTopKSAE":
        ae = dl.batch_top_k.BatchTopKSAE(D, N, K)
    else:
        ae = dl.matryoshka.MatryoshkaBatchTopKSAE(D, N, K, group_sizes=[10, N - 10])
    with torch.no_grad():
        for name, p in ae.named_parameters():
            p.copy_(torch.randn_like(p) * 0.3)
            if name == "threshold":
                p.abs_()
        if hasattr(ae, "threshold") and ae.threshold.ndim == 0:
            ae.threshold.fill_(0.2)
    return ae.eval()


KINDS = ["AutoEncoder", "AutoEncoderNew", "GatedAutoEncoder", "JumpReluAutoEncoder",
         "AutoEncoderTopK", "BatchTopKSAE", "MatryoshkaBatchTopKSAE"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_ae_pt_loads_here_with_the_same_encode_decode(dl, kind, tmp_path):
    ae = _build(dl, kind)
    folder = tmp_path / "trainer_0"
    folder.mkdir()
    torch.save(ae.state_dict(), folder / "ae.pt")                  # what dictionary_learning's training writes
    (folder / "config.json").write_text(json.dumps({"trainer": {
        "dict_class": kind, "activation_dim": D, "dict_size": N, "k": K, "lm_name": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "layer": 15, "submodule_name": "resid_post_layer_15"}, "buffer": {"ctx_len": 128}}))
    imported = read_sae(tmp_path)                                  # the save_dir holds one trainer
    ours = imported.sae
    assert imported.metadata["hook_layer"] == 15 and imported.metadata["model_name"].endswith("SmolLM2-135M-Instruct")
    x = torch.randn(64, D)
    with torch.no_grad():
        f = ae.encode(x)
        assert (f > 0).any()
        torch.testing.assert_close(ours.encode(x), f, **TOL)
        torch.testing.assert_close(ours.decode(ours.encode(x)), ae.decode(f), **TOL)


def test_a_planted_pickle_in_ae_pt_is_refused_without_running_it(tmp_path):
    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    torch.save({"encoder.weight": Boom()}, tmp_path / "ae.pt")
    with pytest.raises(CheckpointError, match="never unpickles"):
        read_sae(tmp_path / "ae.pt")
    assert not (tmp_path / "ran").exists()
