"""harvest --layers: one forward pass, one store per layer, each equal to its own harvest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monosemantic.activations import HarvestConfig, harvest, harvest_layers, open_store
from monosemantic.errors import StoreError

from test_harvest import random_tokens

CFG = HarvestConfig(layer=0, batch_contexts=2, shard_contexts=3)
LAYERS = (2, 5, 9)


def _same_store(a_dir, b_dir) -> None:
    a, b = open_store(a_dir), open_store(b_dir)
    assert a.count == b.count > 0
    for sa, sb, ra, rb in zip(a.shards, b.shards, a.rows, b.rows):
        np.testing.assert_array_equal(np.asarray(sa), np.asarray(sb))
        np.testing.assert_array_equal(np.asarray(ra), np.asarray(rb))
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a_dir, b_dir))
    ma.pop("harvest_seconds"), mb.pop("harvest_seconds")
    assert ma == mb


def test_each_layer_store_equals_its_single_layer_harvest(tmp_path, embedded_lm):
    tokens = random_tokens(embedded_lm.bos_id, n=7, t=24)
    calls = []
    real = embedded_lm.residuals

    def counting(ids, layers, *args):
        calls.append(tuple(layers))
        return real(ids, layers, *args)

    embedded_lm.residuals = counting
    try:
        manifests = harvest_layers(embedded_lm, tokens, {x: tmp_path / f"multi{x}" for x in LAYERS}, CFG, progress=False)
    finally:
        del embedded_lm.residuals
    assert all(c == LAYERS for c in calls), "one forward per batch serves every layer"
    assert {m["layer"] for m in manifests.values()} == set(LAYERS)
    for layer in LAYERS:
        harvest(embedded_lm, tokens, tmp_path / f"single{layer}", HarvestConfig(**{**CFG.__dict__, "layer": layer}), progress=False)
        _same_store(tmp_path / f"multi{layer}", tmp_path / f"single{layer}")
    a, b = open_store(tmp_path / "multi2"), open_store(tmp_path / "multi9")
    assert not np.allclose(np.asarray(a.shards[0]), np.asarray(b.shards[0])), "layers hold different activations"


def test_a_partly_done_multi_layer_harvest_finishes_only_what_is_missing(tmp_path, embedded_lm):
    tokens = random_tokens(embedded_lm.bos_id, n=7, t=24)
    harvest(embedded_lm, tokens, tmp_path / "l2", HarvestConfig(**{**CFG.__dict__, "layer": 2}), progress=False)
    harvest_layers(embedded_lm, tokens, {5: tmp_path / "l5"}, CFG, progress=False)
    (tmp_path / "l5" / "manifest.json").unlink()
    (tmp_path / "l5" / "shard-00001.json").unlink()          # as if killed while writing shard 1
    stamp = (tmp_path / "l2" / "shard-00000.npy").stat().st_mtime_ns
    harvest_layers(embedded_lm, tokens, {2: tmp_path / "l2", 5: tmp_path / "l5"}, CFG, progress=False)
    assert (tmp_path / "l2" / "shard-00000.npy").stat().st_mtime_ns == stamp, "the finished store is left alone"
    harvest(embedded_lm, tokens, tmp_path / "single5", HarvestConfig(**{**CFG.__dict__, "layer": 5}), progress=False)
    _same_store(tmp_path / "l5", tmp_path / "single5")
    with pytest.raises(StoreError, match="no layer"):
        harvest_layers(embedded_lm, tokens, {}, CFG, progress=False)
