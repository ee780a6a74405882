"""The offline scorers on units with a known answer.

N2G runs on a real (tiny) Llama whose attention and MLP outputs are zeroed up to the
hooked layer, so the residual there is exactly the token embedding: a direction along
one token's embedding then fires on that token and nowhere else. The embedding scorer
runs the real all-MiniLM-L6-v2 on real text (the standard library's code and its
docstrings). Probing must find a direction planted among noise."""

from __future__ import annotations

import functools
import inspect
import json
import textwrap

import numpy as np
import pytest
import torch

from monosemantic.autointerp import probing
from monosemantic.autointerp.pool import PoolConfig, UnitForward, build_pool
from monosemantic.autointerp.scorers import ablation, embedding, n2g
from monosemantic.autointerp.units import Units, fit_thresholds
from monosemantic.models import load_model
from monosemantic.token_text import token_pieces

LAYER = 1
TOKEN = 777


@pytest.fixture(scope="module")
def embedding_lm(tiny_model_dirs):
    lm = load_model(str(tiny_model_dirs["llama"]), dtype="float32")
    for block in lm.blocks[: LAYER + 1]:
        block.self_attn.o_proj.weight.data.zero_()
        block.mlp.down_proj.weight.data.zero_()
    return lm


@pytest.fixture(scope="module")
def planted_pool(embedding_lm):
    """Random tokens with TOKEN planted at ~3 % of positions, 200 contexts of 32."""
    from monosemantic.activations import Tokens

    rng = np.random.default_rng(0)
    ctx = rng.integers(100, 2000, size=(200, 32)).astype(np.int32)
    ctx[rng.random(ctx.shape) < 0.03] = TOKEN
    ctx[:, 0] = embedding_lm.bos_id
    doc = np.repeat(np.arange(200, dtype=np.int32)[:, None], 32, 1)
    tokens = Tokens(ctx, doc, np.tile(np.arange(32, dtype=np.int32), (200, 1)))
    return build_pool(embedding_lm, LAYER, tokens, {}, PoolConfig(n_explain=60, n_score=40))


def _direction_unit(v: torch.Tensor, offset: float) -> Units:
    v = v / v.norm()
    return Units("random", [0], v[None], directions=v[None], offset=torch.tensor([offset]))


def _n2g(lm, pool, units):
    acts = units.acts(pool.resid, pool.neurons) * pool.valid[..., None]
    fit_thresholds(units, acts[pool.explain_valid])
    fires = units.fires(acts)[..., 0] & pool.valid
    ex = [n2g.top_examples(acts[..., 0], pool.explain_valid, float(units.threshold[0]), 5)]
    patterns = n2g.build_patterns(UnitForward(lm, LAYER), lm, units, ex, pool.ids, n2g.N2GConfig())[0]
    return patterns, n2g.score(patterns, pool.ids, fires, pool.score_valid)


def test_n2g_recovers_a_one_token_unit(embedding_lm, planted_pool):
    e = embedding_lm.model.get_input_embeddings().weight[TOKEN].detach()
    unit = _direction_unit(e, 0.5 * float(e.norm()))  # fires exactly where the embedding is TOKEN's
    patterns, res = _n2g(embedding_lm, planted_pool, unit)
    assert patterns == [(TOKEN,)]  # every context token is a wildcard: substituting it keeps the activation
    assert res.n_fire >= 5 and res.precision == pytest.approx(1.0) and res.recall == pytest.approx(1.0)
    assert "[[" in n2g.describe(patterns, functools.partial(token_pieces, embedding_lm.tokenizer))


def test_n2g_on_a_random_direction_is_far_from_perfect(embedding_lm, planted_pool):
    unit = _direction_unit(torch.randn(embedding_lm.d_model, generator=torch.Generator().manual_seed(1)), 0.0)
    _, res = _n2g(embedding_lm, planted_pool, unit)
    assert res.f1 < 0.5


def test_n2g_pattern_matching_and_scores():
    ids = torch.tensor([[1, 5, 6, 7, 5, 6], [1, 9, 6, 7, 8, 6]])
    assert n2g.match([(6, 5)], ids).tolist() == [[False, False, True, False, False, True], [False] * 6]
    assert n2g.match([(7, None, 5)], ids).tolist() == [[False, False, False, True, False, False], [False] * 6]
    fires = n2g.match([(6,)], ids)
    mask = torch.ones_like(ids, dtype=torch.bool)
    assert n2g.precision_recall(n2g.match([(6, 5)], ids), fires, mask)[:3] == (1.0, 0.5, pytest.approx(2 / 3))
    assert n2g.precision_recall(torch.zeros_like(mask), fires, mask)[:2] == (0.0, 0.0)  # no prediction: precision 0


def test_random_firing_gets_chance_n2g():
    rng = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 140, (100, 64), generator=rng)
    fires = torch.rand(ids.shape, generator=rng) < 0.05  # fires regardless of the text
    pos = torch.nonzero(fires)[:5]
    patterns = [(int(ids[r, p]),) for r, p in pos]  # the best a graph can do: the tokens it fired on
    res = n2g.score(patterns, ids, fires, torch.ones_like(fires))
    assert res.precision < 0.15  # ≈ the base rate 0.05, not 1


# --- example embeddings ------------------------------------------------------------
def _snippets():
    """Code (the standard library's function bodies, docstrings removed) and prose (their docstrings)."""
    import ast
    import collections
    import json as js
    import pathlib

    code, prose = [], []
    for mod in (collections, js, pathlib, textwrap, inspect):
        tree = ast.parse(inspect.getsource(mod))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 60:
                    prose.append(" ".join(doc.split())[:200])
                body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(getattr(b, "value", None), ast.Constant))]
                text = " ".join(ast.unparse(b) for b in body[:3]).replace("\n", " ")
                if len(text) > 60:
                    code.append(text[:200])
    return code[:120], prose[:120]


@pytest.fixture(scope="module")
def text_chunks():
    code, prose = _snippets()
    texts = code + prose
    emb = embedding.SentenceEmbedder()(texts)
    n = len(texts)
    heldout = torch.tensor([i % 2 == 1 for i in range(n)])
    chunks = embedding.Chunks(torch.arange(n), torch.zeros(n), heldout, emb, torch.ones(n, 1, dtype=torch.bool))
    return chunks, texts, len(code)


def test_embedding_separates_a_topic_unit(text_chunks):
    chunks, texts, n_code = text_chunks
    a = torch.tensor([1.0 if i < n_code else 0.0 for i in range(len(texts))])  # fires on code, not on prose
    out = embedding.score_unit(chunks, a, 0.0, embedding.EmbeddingConfig(), seed=0)
    assert out["auroc"] > 0.9 and out["intruder"] >= 0.8


def test_embedding_on_a_one_word_unit(text_chunks):
    chunks, texts, _ = text_chunks
    a = torch.tensor([1.0 if " return " in f" {t} " else 0.0 for t in texts])
    assert 10 < int(a.sum()) < len(texts) - 10
    out = embedding.score_unit(chunks, a, 0.0, embedding.EmbeddingConfig(), seed=0)
    assert out["auroc"] > 0.75


def test_embedding_on_a_random_unit_is_chance(text_chunks):
    chunks, texts, _ = text_chunks
    aucs = []
    for seed in range(8):
        a = (torch.rand(len(texts), generator=torch.Generator().manual_seed(seed)) < 0.3).float()
        aucs.append(embedding.score_unit(chunks, a, 0.0, embedding.EmbeddingConfig(), seed=seed)["auroc"])
    assert abs(np.mean(aucs) - 0.5) < 0.12


def test_embedding_says_why_it_cannot_score(text_chunks):
    chunks, texts, _ = text_chunks
    a = torch.zeros(len(texts))
    a[0] = 1.0  # fires once, on the explain side only
    assert embedding.score_unit(chunks, a, 0.0, embedding.EmbeddingConfig(), seed=0) == {"status": "no held-out activations"}


def test_auroc():
    assert embedding.auroc([3, 4], [1, 2]) == 1.0 and embedding.auroc([1], [1]) == 0.5 and embedding.auroc([1, 2], [3, 4]) == 0.0


# --- ablation sparsity -------------------------------------------------------------------
def test_effective_count():
    one = torch.zeros(1000)
    one[3] = 5.0
    assert float(ablation.effective_count(one)) == pytest.approx(1.0, rel=0.01)
    dense = torch.randn(100_000, generator=torch.Generator().manual_seed(0))
    assert float(ablation.effective_count(dense)) / 100_000 == pytest.approx(2 / np.pi, rel=0.02)


def test_ablation_of_a_unit_changes_the_logits(tiny_llama):
    """A real ablation moves the next-token logits; a unit silent there is reported as such."""
    d = tiny_llama.d_model
    v = torch.randn(2, d, generator=torch.Generator().manual_seed(0))
    v = v / v.norm(dim=1, keepdim=True)
    units = Units("random", [0, 1], v, directions=v, offset=torch.tensor([-50.0, 1e9]))  # unit 1 never fires
    seqs = [[tiny_llama.bos_id, 200, 300, 400]] * 2
    out = ablation.ablation_sparsity(tiny_llama, 2, units, seqs, [0, 1], ablation.AblationConfig())
    assert 0.0 < out[0]["sparsity"] < 1.0 and out[0]["act"] > 0
    assert out[1]["status"].startswith("silent")


# --- probing ---------------------------------------------------------------------------
def test_probing_recovers_a_planted_direction():
    g = torch.Generator().manual_seed(0)
    n, d = 600, 300
    x = torch.randn(n, d, generator=g)
    y = (torch.rand(n, generator=g) < 0.5).long()
    x[:, 123] += 1.5 * (2 * y - 1)  # the one informative unit among 300 noise units
    task = probing.Task("planted", np.arange(n), y.numpy(), np.arange(n) < 400)
    res = {r.k: r for r in probing.probe(x, task, "test")}
    assert res[1].units == [123] and res[1].accuracy > 0.85
    noise = probing.probe(torch.randn(n, d, generator=g), task, "noise")
    assert all(abs(r.accuracy - 0.5) < 0.15 for r in noise if r.k == 1)


def test_inside_brackets_and_tasks():
    assert probing.inside_brackets(["f", "(", "x", ",", " y", ")", " z"]).tolist() == [0, 0, 1, 1, 1, 1, 0]
    src = ["python-stdlib"] * 10 + ["fortunes"] * 10 + ["debian-handbook/de-DE"] * 10 + ["debian-handbook/fr-FR"] * 10
    names = {t.name for t in probing.sequence_tasks(src, np.arange(40) % 2 == 0)}
    assert {"language/de-DE", "language/fr-FR", "code_vs_prose", "source/debian-handbook", "source/python-stdlib"} <= names
    json.dumps(probing.summarise([probing.ProbeResult("t", "feature", 1, 0.7, 10, 10, [0])]))


def test_n2g_explanation_shows_a_character_split_across_tokens_whole():
    """"日" is two byte-level tokens; one at a time each would show as "\ufffd"."""
    pieces = {1: b"\xe6\x97", 2: b"\xa5", 3: b" of", 4: b"x"}
    text = n2g.describe([(2, 1, 3), (4, None, 3)], lambda ids: [pieces[i] for i in ids])
    assert text == " of[[日]] |  of…[[x]]"
