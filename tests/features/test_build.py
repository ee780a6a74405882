"""Building features.db on a tiny Llama and querying it through FeatureDB."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from monosemantic.activations.valid import excluded_ids, valid_tokens
from monosemantic.errors import ConfigError, MonosemanticError
from monosemantic.features import FeatureDB, FeatureDBError, SchemaVersionError, build_feature_db
from monosemantic.features.build import CHECKPOINT, PARTIAL
from monosemantic.features.streamer import mlp_neuron_module, neuron_directions
from monosemantic.features.prompt import top_for_prompt
from monosemantic.features.directions import decoder_neighbours, logit_effects, through_final_norm

from feature_helpers import TinySAE, make_tokens

LAYER, N_CTX, CTX_LEN, N_TOKENS = 2, 40, 32, 1000


@pytest.fixture(scope="module")
def built(tiny_llama, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    sae = TinySAE(tiny_llama.d_model, 48, scale=3.0)
    tokens = make_tokens(N_CTX, CTX_LEN, tiny_llama.bos_id)
    result = build_feature_db(run, lm=tiny_llama, sae=sae, tokens=tokens, layer=LAYER, n_tokens=N_TOKENS, neurons=True, progress=False)
    return run, sae, tokens, result


def test_build_summary_and_files(built):
    run, sae, tokens, result = built
    assert result.path == run / "features.db" and result.path.is_file()
    assert not (run / PARTIAL).exists() and not (run / CHECKPOINT).exists()
    assert result.n_features == 48 and result.n_neurons == 128
    assert 0 < result.n_tokens <= N_TOKENS + CTX_LEN  # whole contexts, excluded tokens dropped
    with FeatureDB(run) as db:
        assert db.meta["n_tokens"] == result.n_tokens and db.meta["layer"] == LAYER
        assert len(db.list(limit=None)) == 48 and len(db.list(kind="neuron", limit=None)) == 128


def test_top_examples_match_a_direct_forward(built, tiny_llama):
    run, sae, tokens, _ = built
    with FeatureDB(run) as db:
        fid = db.list(sort="density", live_only=True, limit=1)[0].id
        feature = db.get(fid)
    assert feature.top and all(a.activation >= b.activation for a, b in zip(feature.top, feature.top[1:]))
    for ex in feature.top[:3]:
        ids = torch.from_numpy(tokens.contexts[ex.context_id].astype(np.int64))[None]
        acts = sae.encode(tiny_llama.residual(ids, LAYER)[0].float())[:, fid].detach()  # [T]
        acts[~valid_tokens(ids, exclude_ids=excluded_ids(tiny_llama))[0]] = 0  # the attention sink, the token after it, separators
        assert ex.activation == pytest.approx(float(acts[ex.position]), rel=1e-4)
        assert ex.activation == pytest.approx(float(acts.max()), rel=1e-4)  # the context's max
        assert ex.token_ids == tokens.contexts[ex.context_id, ex.start : ex.start + len(ex.token_ids)].tolist()
        assert np.allclose(ex.acts, acts[ex.start : ex.start + len(ex.acts)].numpy(), rtol=2e-3, atol=1e-4)
    for iv in feature.intervals:
        for ex in iv.examples:
            assert iv.lo <= ex.activation <= iv.hi
    with FeatureDB(run) as db:
        rare = db.get(db.list(sort="density", descending=False, live_only=True, limit=1)[0].id)
    assert rare.negatives and all(max(ex.acts) == 0 for ex in rare.negatives)


def test_logit_effects_match_direct_computation(built, tiny_llama):
    run, sae, _, _ = built
    norm = tiny_llama.final_norm
    with FeatureDB(run) as db:
        for fid in (0, 7):
            f = db.get(fid)
            logits = tiny_llama.unembed.float() @ (sae.W_dec[fid].detach() * norm.weight.float())  # [vocab]
            assert [t.token_id for t in f.promoted] == torch.topk(logits, 10).indices.tolist()
            assert [t.token_id for t in f.suppressed] == torch.topk(-logits, 10).indices.tolist()
            assert f.promoted[0].value == pytest.approx(float(logits.max()), rel=1e-4)
        neuron = db.get(3, kind="neuron")
    down = mlp_neuron_module(tiny_llama.blocks[LAYER])
    logits = tiny_llama.unembed.float() @ (down.weight[:, 3].float() * norm.weight.float())
    assert [t.token_id for t in neuron.promoted] == torch.topk(logits, 10).indices.tolist()


def test_final_norm_gain_variants():
    class GemmaRMSNorm(nn.Module):  # Gemma multiplies by (1 + weight)
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.full((4,), 0.5))

    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    assert torch.allclose(through_final_norm(x, GemmaRMSNorm()), x * 1.5)
    ln = nn.LayerNorm(4)
    ln.weight.data.fill_(2.0)
    assert torch.allclose(through_final_norm(x, ln), (x - 3.0) * 2.0)
    W_U = torch.randn(30, 4)
    effects = logit_effects(x.repeat(3, 1), ln, W_U, k=5, chunk=2)
    assert effects.top_ids.shape == (3, 5) and torch.equal(effects.top_ids[0], torch.topk(W_U @ ((x[0] - 3) * 2), 5).indices)
    ids, cos = decoder_neighbours(torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1.0]]), k=1)
    assert ids.flatten().tolist() == [1, 0, 1] and cos[0, 0] > 0.99


def test_neuron_directions_are_down_proj_columns(tiny_llama):
    down = mlp_neuron_module(tiny_llama.blocks[0])
    assert torch.equal(neuron_directions(down)[5], down.weight[:, 5].float())


def test_queries(built, tiny_llama):
    run, sae, tokens, _ = built
    with FeatureDB(run, lm=tiny_llama) as db:
        by_density = db.list(sort="density", limit=None)
        assert [s.density for s in by_density] == sorted((s.density for s in by_density), reverse=True)
        rare = db.list(sort="max_act", descending=False, max_density=0.05, live_only=True, limit=5)
        assert all(0 < s.density <= 0.05 for s in rare) and len(rare) <= 5
        assert [s.max_act for s in rare] == sorted(s.max_act for s in rare)
        # text search: the most frequent token of the corpus
        tok = int(np.bincount(tokens.contexts[:, 1:].ravel()).argmax())
        text = tiny_llama.tokenizer.decode([tok])
        hits = db.search(text)
        assert hits and all(h.activation > 0 for h in hits)
        assert [h.activation for h in hits] == sorted((h.activation for h in hits), reverse=True)
        prompt = top_for_prompt(db, tiny_llama, sae, LAYER, "hello world, this is a test", k=5)
        assert prompt.tokens[0] == db.decode([tiny_llama.bos_id])[0] and len(prompt.per_token) == len(prompt.tokens)
        assert prompt.top and prompt.top[0][1] >= prompt.top[-1][1] and prompt.per_token[0] == []
        # annotations for autointerp, then filter and sort on them
        db.add_explanation(by_density[0].id, "test", "fires on everything")
        db.add_score(by_density[0].id, "detection", 0.9, {"n": 10})
        db.add_score(by_density[1].id, "detection", 0.4)
        assert [s.id for s in db.list(explanation="EVERYTHING")] == [by_density[0].id]
        scored = db.list(sort="score", min_score=0.0)
        assert [s.id for s in scored] == [by_density[0].id, by_density[1].id] and scored[0].score == 0.9
        exported = json.loads(db.export_json(by_density[0].id))
        assert exported["id"] == by_density[0].id and exported["explanation"] == "fires on everything"
        assert exported["scores"][0]["details"] == {"n": 10} and exported["top"][0]["tokens"]
        with pytest.raises(FeatureDBError, match="no feature 999"):
            db.get(999)
    with FeatureDB(run, readonly=True) as db:  # no tokenizer: single tokens from the stored vocabulary
        assert db.search(text)[0].feature_id == hits[0].feature_id


def test_rebuild_is_reused_and_settings_are_guarded(built, tiny_llama):
    run, sae, tokens, _ = built
    kwargs = dict(lm=tiny_llama, sae=sae, tokens=tokens, layer=LAYER, neurons=True, progress=False)
    assert build_feature_db(run, n_tokens=N_TOKENS, **kwargs).reused
    with pytest.raises(ConfigError, match="--force"):
        build_feature_db(run, n_tokens=N_TOKENS // 2, **kwargs)


def _corrupt(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql)
    conn.close()


def test_old_schema_and_unfinished_databases_are_refused(built, tmp_path):
    run = built[0]
    old = tmp_path / "old.db"
    old.write_bytes((run / "features.db").read_bytes())
    _corrupt(old, "UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError, match=r"schema version 0.*--force") as info:
        FeatureDB(old)
    assert isinstance(info.value, MonosemanticError)
    _corrupt(old, "DELETE FROM meta WHERE key IN ('schema_version', 'complete')")
    with pytest.raises(SchemaVersionError, match="unknown"):
        FeatureDB(old)
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(FeatureDBError):
        FeatureDB(tmp_path / "junk.db")
    with pytest.raises(FeatureDBError, match="does not exist"):
        FeatureDB(tmp_path / "nothing")


CHILD = """
import sys, time, torch
sys.path.insert(0, sys.argv[3])
from feature_helpers import TinySAE, make_tokens
from monosemantic.models import load_model
from monosemantic.features import build_feature_db
from monosemantic.features.streaming import FeatureStream
slow = FeatureStream.update
def update(self, *a, **k):
    time.sleep(0.15)
    return slow(self, *a, **k)
FeatureStream.update = update
lm = load_model(sys.argv[1], dtype="float32")
sae = TinySAE(lm.d_model, 48, scale=3.0)
build_feature_db(sys.argv[2], lm=lm, sae=sae, tokens=make_tokens(%d, %d, lm.bos_id), layer=%d, n_tokens=%d,
                 progress=False, checkpoint_seconds=0)
"""


def _table(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_kill_during_build_resumes_to_the_same_database(built, tiny_llama, tiny_model_dirs, tmp_path):
    run, sae, tokens, _ = built
    killed = tmp_path / "killed"
    script = CHILD % (N_CTX, CTX_LEN, LAYER, N_TOKENS)
    child = subprocess.Popen([sys.executable, "-c", script, str(tiny_model_dirs["llama"]), str(killed), str(Path(__file__).parent)])
    deadline = time.time() + 120
    while not (killed / CHECKPOINT).exists():  # kill once at least one batch is checkpointed
        assert child.poll() is None and time.time() < deadline, "child ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (killed / "features.db").exists() and (killed / CHECKPOINT).exists()
    resumed = build_feature_db(killed, lm=tiny_llama, sae=sae, tokens=tokens, layer=LAYER, n_tokens=N_TOKENS, progress=False)
    fresh = build_feature_db(tmp_path / "fresh", lm=tiny_llama, sae=sae, tokens=tokens, layer=LAYER, n_tokens=N_TOKENS, progress=False)
    assert not (killed / CHECKPOINT).exists()
    assert _table(resumed.path, "PRAGMA integrity_check") == [("ok",)]
    for sql in ("SELECT * FROM features ORDER BY kind, id", "SELECT * FROM examples ORDER BY 1, 2, 3, 4, 5",
                "SELECT * FROM token_index ORDER BY 1, 2, 3"):
        assert _table(resumed.path, sql) == _table(fresh.path, sql)
    with FeatureDB(resumed.path) as db:
        assert db.meta["n_tokens"] == fresh.n_tokens
