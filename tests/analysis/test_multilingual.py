"""The multilingual score (analysis/multilingual.py) on planted features with a known
answer, and the model pass (analysis/multilingual_acts.py) on the tiny Llama."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monosemantic.analysis.multilingual import multilinguality, pairwise_correlation, same_token_share, shuffle_alignment
from monosemantic.analysis.multilingual_acts import batches, pool, pooled_activations, select_passages
from monosemantic.analysis.multilingual_config import MultilingualConfig
from monosemantic.analysis.multilingual_result import analyse
from multilingual_helpers import parallel_passages, tiny_relu

L, P = 5, 200
AGNOSTIC, SPECIFIC, TOPICAL_SPECIFIC = 0, 1, 2


def planted(seed: int = 0) -> torch.Tensor:
    """[L, P, 40]: feature 0 fires on a concept's passages in every language (with
    per-language noise); 1 fires only in language 3; 2 fires on the same concept but
    only in language 3; the rest fire at random."""
    g = torch.Generator().manual_seed(seed)
    concept = (torch.rand(P, generator=g) < 0.3).float() * (1 + torch.rand(P, generator=g))       # [P]
    acts = torch.rand(L, P, 40, generator=g) * (torch.rand(L, P, 40, generator=g) < 0.2)         # background
    acts[:, :, AGNOSTIC] = concept * (1 + 0.3 * torch.rand(L, P, generator=g))
    acts[:, :, SPECIFIC] = 0
    acts[3, :, SPECIFIC] = torch.rand(P, generator=g) * (torch.rand(P, generator=g) < 0.4)
    acts[:, :, TOPICAL_SPECIFIC] = 0
    acts[3, :, TOPICAL_SPECIFIC] = concept
    return acts


def test_planted_language_agnostic_feature_scores_high_and_specific_low():
    m = multilinguality(planted())
    assert m.score[AGNOSTIC] > 0.8 and m.agnostic[AGNOSTIC] and not m.specific[AGNOSTIC]
    assert abs(float(m.baseline[AGNOSTIC])) < 0.2 and m.threshold < 0.3   # the shuffled pairing scores ~0
    for f in (SPECIFIC, TOPICAL_SPECIFIC):
        assert abs(m.score[f]) < 0.05 and not m.agnostic[f] and m.specific[f]
        assert m.share[3, f] == pytest.approx(1.0)
    background = slice(3, None)
    assert m.agnostic[background].float().mean() < 0.1          # random firing is not multilingual
    assert m.specific[background].float().mean() < 0.1          # ... nor specific to one language
    assert abs(float(m.score[background].mean())) < 0.05
    assert m.fractions()["live"] == 40


def test_shuffled_alignment_removes_the_agnostic_score():
    acts = planted()
    shuffled = shuffle_alignment(acts, seed=1)
    assert torch.equal(shuffled[0], acts[0])                      # same values, pairing broken
    assert torch.equal(shuffled[2].sort(0).values, acts[2].sort(0).values)
    assert abs(float(pairwise_correlation(shuffled)[AGNOSTIC])) < 0.2
    assert float(pairwise_correlation(acts, "spearman")[AGNOSTIC]) > 0.7


def test_pairwise_correlation_matches_numpy():
    acts = torch.rand(3, 30, 4)
    want = np.mean([[np.corrcoef(acts[a, :, f], acts[b, :, f])[0, 1] for a, b in ((0, 1), (0, 2), (1, 2))] for f in range(4)], 1)
    assert np.allclose(pairwise_correlation(acts).numpy(), want, atol=1e-5)


def test_same_token_share_separates_untranslated_strings():
    acts = torch.ones(4, 4, 4)                                               # [L, P, n]
    peak = torch.tensor([5, 6, 7, 8]).repeat(4, 1)[..., None].repeat(1, 1, 4)   # the same token everywhere
    acts[3, 3, 0], peak[3, 3, 0] = 0, -1           # feature 0, passage 3: fires in 3 languages, all on one token
    acts[1:, 2, 0], peak[1:, 2, 0] = 0, -1         # passage 2 fires in 1 language: not counted
    peak[1, :3, 1] = torch.tensor([1, 2, 3])       # feature 1: language 1 peaks elsewhere on 3 of 4 passages
    peak[:, :, 2] = torch.arange(16).reshape(4, 4)  # feature 2: every language on its own token
    peak[1, :, 3] = 9                              # feature 3: two languages fire, on different tokens;
    acts[2:, :, 3], peak[2:, :, 3] = 0, -1         # the two silent ones must not count as agreeing
    share = same_token_share(acts, peak)
    assert share.tolist() == pytest.approx([1.0, (3 / 4 * 3 + 1) / 4, 1 / 4, 1 / 2])


def test_pool_uses_only_valid_tokens():
    acts = torch.tensor([[[1.0], [5.0], [3.0]]])                 # [1, 3, 1]
    valid = torch.tensor([[True, False, True]])
    ids = torch.tensor([[7, 8, 9]])
    assert pool(acts, valid, "max", ids) == (torch.tensor([[3.0]]), torch.tensor([[9]]))
    assert pool(acts, valid, "mean", ids).acts.item() == 2.0
    assert pool(torch.zeros(1, 3, 1), valid, "max", ids).peak.item() == -1       # never fires: no peak


@pytest.fixture(scope="module")
def tiny_sae(tiny_llama):
    return tiny_relu(tiny_llama)


def test_batched_pass_equals_one_passage_at_a_time(tiny_llama, tiny_sae, tmp_path):
    chosen, ids = select_passages(parallel_passages(12), ["en-US", "ja-JP"], 12, tiny_llama.tokenizer, 64)
    batched = pooled_activations(tiny_llama, [tiny_sae], 2, ids, how="max", outlier_threshold=None,
                                 partial=tmp_path / "a", settings={"x": 1}, tokens_per_batch=64, progress=False)[0].acts
    single = pooled_activations(tiny_llama, [tiny_sae], 2, ids, how="max", outlier_threshold=None,
                                partial=tmp_path / "b", settings={"x": 1}, tokens_per_batch=1, progress=False)[0].acts
    assert any(len(b.rows) > 1 for b in batches(tiny_llama, ids["en-US"], 64))     # padding happened
    assert batched.shape == (2, 12, 32)
    assert torch.allclose(batched, single, atol=1e-4)


def test_analyse_writes_examples_and_resumes_from_partial(tiny_llama, tiny_sae, tmp_path):
    cfg = MultilingualConfig(languages=("en-US", "fr-FR", "ja-JP"), passages=30, top=3, min_fires=1)
    result = analyse(tiny_llama, [tiny_sae, tiny_sae], ["tiny", "tiny-again"], 2, parallel_passages(40), cfg, tmp_path / "partial")
    assert result["n_passages"] == 30 and len(result["top"]) + len(result["top_same_token"]) >= 1
    assert result["agnostic_same_token"] + result["agnostic_cross_lingual"] == result["agnostic"]
    assert [r["n_latents"] for r in result["by_size"]] == [32, 32]
    ex = (result["top"] + result["top_same_token"])[0]["examples"][0]["languages"]
    assert set(ex) == {"en-US", "fr-FR", "ja-JP"}
    assert "川" in "".join(ex["ja-JP"]["tokens"])               # rendered by bytes, no "�"
    assert "\ufffd" not in "".join(ex["ja-JP"]["tokens"])
    files = sorted(p.name for p in (tmp_path / "partial").glob("*.npy"))
    assert files == sorted(f"sae{s}-{lang}{kind}.npy" for s in (0, 1) for lang in cfg.languages for kind in ("", "-peak"))
    # a finished language is read back, not recomputed: silence ja-JP in its saved file
    saved = tmp_path / "partial" / "sae0-ja-JP.npy"
    np.save(saved, np.zeros_like(np.load(saved)))
    again = analyse(tiny_llama, [tiny_sae, tiny_sae], ["tiny", "tiny-again"], 2, parallel_passages(40), cfg, tmp_path / "partial")
    assert again["by_size"][1] == result["by_size"][1]                       # the other SAE's files untouched
    assert again["mean_score_live"] < result["mean_score_live"] and again["share_by_language"]["ja-JP"] == 0
    # other settings (fewer passages) start over
    fewer = analyse(tiny_llama, [tiny_sae], ["tiny"], 2, parallel_passages(40), MultilingualConfig(**{**cfg.__dict__, "passages": 25}),
                    tmp_path / "partial")
    assert fewer["n_passages"] == 25 and fewer["share_by_language"]["ja-JP"] > 0
