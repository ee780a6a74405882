"""The fast path of `interpret` (shared prefixes run once through a KV cache, only the
sampled latents encoded) gives the reference path's numbers, on real tiny models of
every supported family and a real ReLU SAE."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from feature_helpers import make_tokens  # noqa: E402

from monosemantic.autointerp.pool import PoolConfig, UnitForward, build_pool  # noqa: E402
from monosemantic.autointerp.scorers import ablation, n2g  # noqa: E402
from monosemantic.autointerp.shortseq import alternatives, last_position, substituted  # noqa: E402
from monosemantic.autointerp.units import fit_thresholds, make_units  # noqa: E402
from monosemantic.models import load_model  # noqa: E402
from monosemantic.sae import SAEConfig, make_sae  # noqa: E402

LAYER = 2


@pytest.fixture(scope="module", params=["llama", "gemma", "gpt2"])
def lm(request, tiny_model_dirs):
    return load_model(str(tiny_model_dirs[request.param]), dtype="float32")


def _seqs(lm):
    g = torch.Generator().manual_seed(0)
    return [[lm.bos_id] + torch.randint(100, 2000, (n,), generator=g).tolist() for n in (1, 2, 3, 4, 4, 4, 3)]


def test_substituted_states_equal_running_each_substituted_sequence(lm):
    forward, seqs, n = UnitForward(lm, LAYER), _seqs(lm), 2
    alts, resid, neurons = substituted(forward, lm, seqs, n)
    assert alts == alternatives(lm, seqs, n)
    plain = []
    for i, s in enumerate(seqs):
        for pos in range(len(s) - 2):
            for a in alts[i][pos]:  # alternatives at position pos + 1 (after the BOS-like token)
                t = list(s)
                t[pos + 1] = a
                plain.append(t)
    ref_resid, ref_neurons = last_position(forward, plain)
    assert resid.shape == ref_resid.shape == (len(plain), lm.d_model)
    torch.testing.assert_close(resid, ref_resid, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(neurons, ref_neurons, rtol=1e-5, atol=1e-5)


def test_ablation_fast_path_equals_the_reference(lm):
    units = make_units("random", [0, 1, 2], torch.randn(200, lm.d_model), seed=0)
    units.offset = torch.tensor([-50.0, -20.0, 1e9])  # unit 2 never fires: "silent" on both paths
    seqs = [s + [300, 400] for s in _seqs(lm)][:5]
    which = [0, 1, 2, 0, 1]
    module = UnitForward(lm, LAYER).neuron_module
    fast = ablation.ablation_sparsity(lm, LAYER, units, seqs, which, ablation.AblationConfig(batch=2), module)
    ref = ablation.ablation_sparsity(lm, LAYER, units, seqs, which, ablation.AblationConfig(batch=2), module, reference=True)
    assert [set(r) for r in fast] == [set(r) for r in ref] and "status" in ref[2]
    for f, r in zip(fast, ref):
        for key in ("sparsity", "act"):
            if key in r:
                assert f[key] == pytest.approx(r[key], rel=1e-4, abs=1e-6)


@pytest.fixture(scope="module")
def relu_sae(tiny_llama):
    torch.manual_seed(0)
    sae = make_sae(SAEConfig(architecture="relu", d_in=tiny_llama.d_model, n_latents=64)).eval()
    with torch.no_grad():
        sae.W_enc.mul_(30.0)
        sae.b_enc.fill_(-0.2)
    return sae


def test_feature_activations_equal_the_full_encode(relu_sae):
    x = torch.randn(300, relu_sae.cfg.d_in, generator=torch.Generator().manual_seed(1))
    fast = make_units("feature", [3, 17, 40], x, sae=relu_sae)
    ref = make_units("feature", [3, 17, 40], x, sae=relu_sae, reference=True)
    for rows in (x, x[:1], x[:7].reshape(7, 1, -1)):
        a, b = fast.acts(rows, None), ref.acts(rows, None)
        assert a.shape == b.shape == (*rows.shape[:-1], 3) and bool((b > 0).any())
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)  # the GEMM's summation order may differ


def test_n2g_fast_path_builds_the_reference_patterns(tiny_llama, relu_sae):
    lm = tiny_llama
    pool = build_pool(lm, LAYER, make_tokens(60, 24, lm.bos_id), {}, PoolConfig(n_explain=40, n_score=20))
    forward = UnitForward(lm, LAYER)
    live = (relu_sae.encode(pool.resid[pool.explain_valid]) > 0).any(0).nonzero()[:, 0].tolist()
    assert len(live) >= 6
    out = {}
    for reference in (True, False):
        units = make_units("feature", live[:6], pool.resid[pool.explain_valid], sae=relu_sae, reference=reference)
        acts = units.acts(pool.resid, pool.neurons) * pool.valid[..., None]
        fit_thresholds(units, acts[pool.explain_valid])
        ex = [n2g.top_examples(acts[..., u], pool.explain_valid, float(units.threshold[u]), 4) for u in range(len(units))]
        out[reference] = n2g.build_patterns(forward, lm, units, ex, pool.ids, n2g.N2GConfig(), reference=reference)
    assert out[True] == out[False] and any(len(p) > 1 for ps in out[True] for p in ps)
