"""The one valid-token rule (activations/valid.py), and that harvest, the feature
database and the spliced eval all keep to it: none of them may keep position 0, the
first token after it, or a BOS or separator that appears later in a context."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import torch

from monosemantic.activations import HarvestConfig, Tokens, harvest, open_store
from monosemantic.activations.valid import SKIP_POSITIONS, excluded_ids, outlier_threshold, valid_tokens
from monosemantic.evals.spliced import spliced_stats
from monosemantic.features import build_feature_db

N_CTX, CTX_LEN, LAYER = 6, 16, 2
MID_BOS = [(0, 5), (3, 9), (5, 15)]       # a BOS after position 0 (as packing a BOS-separated corpus can give)
MID_SEP = [(1, 7), (4, 3)]                 # the separator packed between two documents
NO_BOS_START = (2, 4)                      # contexts whose position 0 is not a BOS: still never valid


def test_rule_drops_leading_positions_special_tokens_and_outliers():
    ids = torch.tensor([[1, 5, 6, 1, 7], [1, 8, 2, 9, 9]])
    norms = torch.tensor([[90.0, 1.0, 2.0, 1.0, 50.0], [90.0, 1.0, 1.0, 1.0, 1.0]])
    assert valid_tokens(ids, exclude_ids=(1,), skip_positions=1).tolist() == [[False, True, True, False, True], [False, True, True, True, True]]
    assert valid_tokens(ids, exclude_ids=(1,)).tolist() == [[False, False, True, False, True], [False, False, True, True, True]]  # default: 0 and 1
    assert valid_tokens(ids, exclude_ids=(1, 2), skip_positions=2).tolist() == [[False, False, True, False, True],
                                                                                [False, False, False, True, True]]
    got = valid_tokens(ids, exclude_ids=(1,), skip_positions=1, norms=norms, outlier_threshold=10.0)
    assert got.tolist() == [[False, True, True, False, False], [False, True, True, True, True]]
    assert outlier_threshold(norms, ids, exclude_ids=(1,), skip_positions=1) == pytest.approx(10.0)   # 10 x median of the kept norms (1)
    with pytest.raises(ValueError):
        valid_tokens(ids, exclude_ids=(), outlier_threshold=1.0)


def _tokens(lm) -> Tokens:
    bos_id = lm.bos_id
    rng = np.random.default_rng(0)
    contexts = rng.integers(100, 2000, size=(N_CTX, CTX_LEN)).astype(np.int32)
    contexts[:, 0] = bos_id
    contexts[list(NO_BOS_START), 0] = 1234
    for c, p in MID_BOS:
        contexts[c, p] = bos_id
    for c, p in MID_SEP:
        contexts[c, p] = lm.sep_id
    doc_ids = np.repeat(np.arange(N_CTX, dtype=np.int32)[:, None], CTX_LEN, 1)
    doc_pos = np.tile(np.arange(CTX_LEN, dtype=np.int32), (N_CTX, 1))
    return Tokens(contexts, doc_ids, doc_pos)


EXPECTED = N_CTX * (CTX_LEN - SKIP_POSITIONS) - len(MID_BOS) - len(MID_SEP)  # positions ≥ 2, no BOS or separator


def test_harvest_keeps_no_position_zero_and_no_bos(tiny_llama, tmp_path):
    tokens = _tokens(tiny_llama)
    manifest = harvest(tiny_llama, tokens, tmp_path, HarvestConfig(layer=LAYER, batch_contexts=2, shard_contexts=3), progress=False)
    rows = np.concatenate([np.asarray(r) for r in open_store(tmp_path).rows])
    ctx, pos = rows[:, 0], rows[:, 1]
    assert (pos >= SKIP_POSITIONS).all()
    assert not np.isin(tokens.contexts[ctx, pos], excluded_ids(tiny_llama)).any()
    excluded = round(manifest["excluded_fraction"] * EXPECTED)
    assert manifest["count"] + excluded == EXPECTED


class EveryTokenSAE(torch.nn.Module):
    """Each latent fires on every token (activation = a positive projection + 1): a
    kept invalid position would show up in the counts and as an example."""

    def __init__(self, d: int, n: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W_dec = torch.nn.Parameter(torch.randn(n, d, generator=g) / d**0.5)
        self.W_enc = torch.nn.Parameter(self.W_dec.detach().T.clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(n))
        self.b_dec = torch.nn.Parameter(torch.zeros(d))

    def encode(self, x):
        return (x @ self.W_enc).abs() + 1.0

    def decode(self, f):
        return f @ self.W_dec


def test_feature_database_has_no_example_at_position_zero_or_a_bos(tiny_llama, tmp_path):
    tokens = _tokens(tiny_llama)
    sae = EveryTokenSAE(tiny_llama.d_model)
    result = build_feature_db(tmp_path, lm=tiny_llama, sae=sae, tokens=tokens, layer=LAYER, n_tokens=N_CTX * CTX_LEN,
                              top_k=N_CTX * CTX_LEN, progress=False)
    with sqlite3.connect(result.path) as conn:
        examples = conn.execute("SELECT context_id, position FROM examples WHERE section != 'negative'").fetchall()
        counts = {c for (c,) in conn.execute("SELECT count FROM features WHERE kind = 'feature'")}
    assert examples and all(p >= SKIP_POSITIONS for _, p in examples)
    assert all(tokens.contexts[c, p] not in excluded_ids(tiny_llama) for c, p in examples)
    assert result.n_tokens == EXPECTED and counts == {EXPECTED}    # every latent fires on every valid token only


def test_spliced_eval_puts_the_reconstruction_only_at_valid_tokens(tiny_llama):
    contexts = torch.from_numpy(_tokens(tiny_llama).contexts.astype(np.int64))
    seen = []

    def reconstruct(x):                                # [N, d] rows the eval splices into
        seen.append(x.shape[0])
        return x

    stats = spliced_stats(tiny_llama, LAYER, contexts, reconstruct, torch.zeros(tiny_llama.d_model), batch_size=N_CTX)
    assert seen == [EXPECTED]
    assert stats.ce_sae == pytest.approx(stats.ce_clean, abs=1e-5)
