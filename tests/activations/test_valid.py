"""The one valid-token rule (activations/valid.py) and the three stages that use it:
the harvest stores, the spliced eval replaces and the feature database records no
token at position 0 or 1, no BOS and no separator."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from monosemantic.activations import HarvestConfig, harvest, open_store
from monosemantic.activations.valid import special_token_ids, valid_tokens
from monosemantic.evals.spliced import spliced_stats
from monosemantic.features import FeatureDB, build_feature_db

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from feature_helpers import TinySAE, make_tokens  # noqa: E402


def test_rule_excludes_first_positions_special_tokens_and_outliers():
    ids = torch.tensor([[1, 50, 60, 0, 70, 80], [1, 1, 90, 91, 92, 2]])
    norms = torch.tensor([[9e3, 1.0, 1.0, 1.0, 500.0, 1.0], [9e3, 1.0, 1.0, 1.0, 1.0, 1.0]])
    keep = valid_tokens(ids, [0, 1, 2], norms=norms, threshold=100.0)
    assert keep.tolist() == [[False, False, True, False, False, True], [False, False, True, True, True, False]]
    assert valid_tokens(ids, [], first_positions=1).tolist() == [[False] + [True] * 5] * 2


def _with_separators(tokens, sep: int):
    tokens.contexts[:, 7] = sep  # a document boundary inside every context
    tokens.contexts[::2, 12] = sep
    return tokens


def test_harvest_stores_no_excluded_token(tmp_path, tiny_llama):
    from test_harvest import random_tokens

    tokens = _with_separators(random_tokens(tiny_llama.bos_id, n=4, t=24), tiny_llama.sep_id)
    harvest(tiny_llama, tokens, tmp_path / "store", HarvestConfig(layer=2, batch_contexts=2, shard_contexts=2), progress=False)
    rows = np.concatenate([np.asarray(r) for r in open_store(tmp_path / "store").rows])  # [N, (ctx, pos, doc, doc_pos)]
    stored = tokens.contexts[rows[:, 0], rows[:, 1]]
    assert rows[:, 1].min() >= 2
    assert not np.isin(stored, special_token_ids(tiny_llama)).any()
    assert len(rows) == 4 * (24 - 2) - 4 - 2  # every other token kept (no outlier in random text)


def test_feature_database_records_no_excluded_token(tmp_path, tiny_llama):
    tokens = _with_separators(make_tokens(6, 20, tiny_llama.bos_id), tiny_llama.sep_id)
    build_feature_db(tmp_path, lm=tiny_llama, sae=TinySAE(tiny_llama.d_model, 16, scale=3.0), tokens=tokens, layer=2, progress=False)
    with FeatureDB(tmp_path) as db:
        rows = db.conn.execute("SELECT context_id, position FROM examples WHERE section != 'negative'").fetchall()
        assert db.meta["n_tokens"] == 6 * 18 - 6 - 3
    assert rows
    ctx, pos = np.array(rows).T
    assert pos.min() >= 2 and not np.isin(tokens.contexts[ctx, pos], special_token_ids(tiny_llama)).any()


def test_spliced_eval_replaces_only_valid_tokens(tiny_llama):
    ids = torch.randint(3, 5000, (3, 16), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = tiny_llama.bos_id
    ids[:, 5] = tiny_llama.sep_id
    seen = []

    def reconstruct(x):
        seen.append(x.shape[0])
        return x

    spliced_stats(tiny_llama, 2, ids, reconstruct, torch.zeros(tiny_llama.d_model), batch_size=3)
    assert seen == [3 * (16 - 3)]
