"""From pooled activations to the multilingual result (a JSON-ready dict): the
fractions for every SAE, and for the first one the top features with the same passage
side by side in each language."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from .multilingual import multilinguality, pairwise_correlation, same_token_share
from .multilingual_acts import canonical_tokens, pooled_activations, select_passages, token_activations
from .multilingual_config import MultilingualConfig

FORMAT = "monosemantic-multilingual/1"
SAME_TOKEN = 0.5     # agnostic features peaking on one token in every language on at least this share of passages
EXAMPLES = 2         # passages shown per top feature


def _split(m, same: torch.Tensor) -> dict:
    """The agnostic features split by what carries them across languages."""
    same_token = m.agnostic & (same >= SAME_TOKEN)
    cross = m.agnostic & ~same_token
    live = max(int(m.live.sum()), 1)
    return {"agnostic_same_token": int(same_token.sum()), "agnostic_cross_lingual": int(cross.sum()),
            "same_token_fraction": int(same_token.sum()) / live, "cross_lingual_fraction": int(cross.sum()) / live}


def _summary(m, same: torch.Tensor, n_latents: int) -> dict:
    live = m.live
    return {"n_latents": n_latents, "threshold": round(m.threshold, 4), **m.fractions(), **_split(m, same),
            "mean_score_live": round(float(m.score[live].mean()), 4) if live.any() else 0.0,
            "mean_baseline_live": round(float(m.baseline[live].mean()), 4) if live.any() else 0.0}


def _entry(m, acts, spearman, same, lengths, f: int, languages) -> dict:
    a = acts[:, :, f]                                                       # [L, P]
    length_r = [float(np.corrcoef(a[i].numpy(), lengths[i].numpy())[0, 1]) if a[i].std() > 0 else 0.0
                for i in range(len(languages))]
    return {"feature": f, "score": round(float(m.score[f]), 4), "baseline": round(float(m.baseline[f]), 4),
            "spearman": round(float(spearman[f]), 4), "same_token_share": round(float(same[f]), 3),
            "share": {lang: round(float(m.share[i, f]), 3) for i, lang in enumerate(languages)},
            "fires": {lang: int((a[i] > 0).sum()) for i, lang in enumerate(languages)},
            "length_r": round(float(np.mean(length_r)), 3)}


def _add_examples(entries: list[dict], lm, sae, layer, acts, ids, passages, languages, threshold, tokens_per_batch) -> None:
    """Per entry, the EXAMPLES passages where its feature fires most in its weakest
    language, in every language; one batched pass per language for all of them."""
    if not entries:
        return
    features = [e["feature"] for e in entries]
    chosen = {f: torch.argsort(acts[:, :, f].amin(0), descending=True)[:EXAMPLES].tolist() for f in features}
    rows = sorted({p for ps in chosen.values() for p in ps})
    shown = {lang: dict(zip(rows, token_activations(lm, sae, layer, [ids[lang][p] for p in rows], features, threshold, tokens_per_batch)))
             for lang in languages}
    for k, e in enumerate(entries):
        f, examples = e["feature"], []
        for p in chosen[f]:
            per_lang = {}
            for i, lang in enumerate(languages):
                tokens, values = shown[lang][p]
                v = [round(float(x), 4) for x in values[:, k]]
                top = int(np.argmax(v)) if v else 0
                per_lang[lang] = {"tokens": tokens, "acts": v, "max": round(float(acts[i, p, f]), 4),
                                  "top_token": tokens[top] if tokens else ""}
            tops = {s["top_token"].strip() for s in per_lang.values()}
            examples.append({"key": passages[p].key, "same_top_token": len(tops) == 1, "languages": per_lang})
        e["examples"] = examples


def analyse(lm, saes, names: list[str], layer: int, passages, cfg: MultilingualConfig, partial: Path, *,
            outlier_threshold: float | None = None, sae_ids: list[str] | None = None, progress: bool = False) -> dict:
    """The result for saes[0] (and the fractions of every SAE in `by_size`) on the
    passages aligned in all of cfg.languages."""
    start = time.perf_counter()
    chosen, ids = select_passages(passages, cfg.languages, cfg.passages, lm.tokenizer, cfg.max_tokens, cfg.seed)
    if len(chosen) < 20:
        raise ConfigError(f"only {len(chosen)} passages are aligned in all of {', '.join(cfg.languages)} within "
                          f"{cfg.max_tokens} tokens: choose fewer languages or raise --max-tokens")
    settings = {"passages": [p.key for p in chosen], "languages": list(cfg.languages), "pool": cfg.pool,
                "saes": sae_ids or names, "outlier_threshold": outlier_threshold}
    pooled = pooled_activations(lm, saes, layer, ids, how=cfg.pool, outlier_threshold=outlier_threshold,
                                partial=partial, settings=settings, tokens_per_batch=cfg.tokens_per_batch, progress=progress)
    model_seconds = time.perf_counter() - start
    lengths = torch.tensor([[len(t) for t in ids[lang]] for lang in cfg.languages], dtype=torch.float32)
    kw = dict(quantile=cfg.quantile, specific_share=cfg.specific_share, min_fires=cfg.min_fires, seed=cfg.seed)
    by_size, first = [], None
    for name, sae, p in zip(names, saes, pooled):
        m = multilinguality(p.acts, **kw)
        same = same_token_share(p.acts, canonical_tokens(lm.tokenizer, p.peak))
        by_size.append({"run": name, **_summary(m, same, int(sae.W_dec.shape[0]))})
        first = first or (m, same)
    m, same = first
    acts = pooled[0].acts
    spearman = pairwise_correlation(acts, "spearman")
    ranked = torch.argsort(torch.where(m.agnostic, m.score, torch.full_like(m.score, -2)), descending=True)
    cross = [int(f) for f in ranked if m.agnostic[f] and same[f] < SAME_TOKEN][:cfg.top]
    shared = [int(f) for f in ranked if m.agnostic[f] and same[f] >= SAME_TOKEN][:3]
    t_examples = time.perf_counter()
    top = [_entry(m, acts, spearman, same, lengths, f, cfg.languages) for f in cross]
    top_same = [_entry(m, acts, spearman, same, lengths, f, cfg.languages) for f in shared]
    _add_examples(top + top_same, lm, saes[0], layer, acts, ids, chosen, cfg.languages, outlier_threshold, cfg.tokens_per_batch)
    edges = np.linspace(-0.2, 1.0, 49)
    live = m.live.numpy()
    return {
        "format": FORMAT, "run": names[0], "config": {k: v for k, v in asdict(cfg).items() if k != "compare"},
        "compare": names[1:], "languages": list(cfg.languages), "n_passages": len(chosen),
        "sources": sorted({p.source for p in chosen}),
        "tokens_per_language": {lang: int(lengths[i].sum()) for i, lang in enumerate(cfg.languages)},
        "pool": cfg.pool, "score": "mean over language pairs of the Pearson correlation across passages",
        "baseline": f"the same with each language's passages permuted independently (seed {cfg.seed})",
        "rule": (f"live: fires on >= {cfg.min_fires} passage-language pairs; agnostic: score > the shuffled baseline's "
                 f"{cfg.quantile:.0%} quantile; specific: not agnostic and >= {cfg.specific_share:.0%} of its activation mass "
                 f"in one language; an agnostic feature is same-token when, on the passages where it fires in >= 2 languages, on "
                 f"average >= {SAME_TOKEN:.0%} of those languages peak on one token (an untranslated command, name or URL), "
                 "cross-lingual otherwise"),
        **by_size[0],
        "mean_spearman_live": round(float(spearman[m.live].mean()), 4) if m.live.any() else 0.0,
        "share_by_language": {lang: round(float(acts[i].sum() / acts.sum().clamp_min(1e-30)), 4) for i, lang in enumerate(cfg.languages)},
        "specific_by_language": {lang: int((m.specific & (m.share.argmax(0) == i)).sum()) for i, lang in enumerate(cfg.languages)},
        "histogram": {"edges": edges.round(4).tolist(),
                      "aligned": np.histogram(m.score.numpy()[live], edges)[0].tolist(),
                      "shuffled": np.histogram(m.baseline.numpy()[live], edges)[0].tolist()},
        "top": top, "top_same_token": top_same, "by_size": by_size,
        "seconds": {"model_and_saes": round(model_seconds, 1), "examples": round(time.perf_counter() - t_examples, 1),
                    "total": round(time.perf_counter() - start, 1)},
    }
