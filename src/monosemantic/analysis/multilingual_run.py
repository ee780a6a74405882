"""`monosemantic multilingual RUN`: how language-agnostic a run's features are, on the
corpus's aligned passages (data/parallel.py), written to RUN/analysis/multilingual/
(result.json, scores.png, by_size.png). Other runs on the same store (a size family)
are scored in the same pass: the model runs once, every SAE encodes its residuals."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import atomic
from ..data.corpus import cache_dir
from ..data.parallel import ensure_parallel
from ..errors import ConfigError
from ..run import ANALYSIS_DTYPE, Run
from .multilingual import multilinguality, pairwise_correlation
from .multilingual_acts import pooled_activations, select_passages, token_activations
from .multilingual_config import MultilingualConfig

OUT = Path("analysis") / "multilingual"
RESULT = "result.json"
FORMAT = "monosemantic-multilingual/1"
def _check_same_store(run: Run, other: Run) -> None:
    if other.layer != run.layer or (other.model_name or run.model_name) != (run.model_name or other.model_name):
        raise ConfigError(f"{other.dir} is not on the same model and layer as {run.dir} "
                          f"({other.model_name} layer {other.layer} vs {run.model_name} layer {run.layer}): compare runs of one store")


def _feature_entry(m, acts: torch.Tensor, spearman: torch.Tensor, lengths: torch.Tensor, f: int, languages) -> dict:
    a = acts[:, :, f]                                                       # [L, P]
    length_r = [float(np.corrcoef(a[i].numpy(), lengths[i].numpy())[0, 1]) if a[i].std() > 0 else 0.0
                for i in range(len(languages))]
    return {"feature": f, "score": round(float(m.score[f]), 4), "baseline": round(float(m.baseline[f]), 4),
            "spearman": round(float(spearman[f]), 4),
            "share": {lang: round(float(m.share[i, f]), 3) for i, lang in enumerate(languages)},
            "fires": {lang: int((a[i] > 0).sum()) for i, lang in enumerate(languages)},
            "length_r": round(float(np.mean(length_r)), 3)}


def _examples(lm, sae, layer, acts, ids, passages, f, languages, threshold, per_feature=2) -> list[dict]:
    """The passages where feature f fires most in its weakest language, shown in each."""
    weakest = acts[:, :, f].amin(0)                                         # [P]
    out = []
    for p in torch.argsort(weakest, descending=True)[:per_feature].tolist():
        shown = {}
        for i, lang in enumerate(languages):
            tokens, values = token_activations(lm, sae, layer, ids[lang][p], f, threshold)
            top = int(np.argmax(values)) if values else 0
            shown[lang] = {"tokens": tokens, "acts": values, "max": round(float(acts[i, p, f]), 4),
                           "top_token": tokens[top] if tokens else ""}
        tops = {v["top_token"].strip() for v in shown.values()}
        out.append({"key": passages[p].key, "same_top_token": len(tops) == 1, "languages": shown})
    return out


def _summary(m, n_latents: int) -> dict:
    return {"n_latents": n_latents, "threshold": round(m.threshold, 4), **m.fractions(),
            "mean_score_live": round(float(m.score[m.live].mean()), 4) if m.live.any() else 0.0,
            "mean_baseline_live": round(float(m.baseline[m.live].mean()), 4) if m.live.any() else 0.0}


def run_multilingual(run: Run | str | Path, cfg: MultilingualConfig | None = None, corpus_dir: Path | None = None,
                     progress: bool = True) -> dict:
    cfg = cfg or MultilingualConfig()
    run = Run.of(run)
    start = time.perf_counter()
    out_dir = run.dir / OUT
    others = [Run.of(c) for c in cfg.compare]
    for other in others:
        _check_same_store(run, other)
    passages = ensure_parallel(Path(corpus_dir) if corpus_dir else cache_dir())
    have = {lang for p in passages for lang in p.texts}
    missing = [lang for lang in cfg.languages if lang not in have]
    if missing or len(cfg.languages) < 2:
        raise ConfigError(f"languages {', '.join(missing) or '(fewer than 2)'} have no aligned passages: choose from {', '.join(sorted(have))}")
    lm = run.load_model(ANALYSIS_DTYPE)
    saes = [run.sae()] + [o.sae() for o in others]
    result = analyse(lm, saes, [r.dir.name for r in [run] + others], run.layer, passages, cfg, out_dir / "partial",
                     outlier_threshold=run.manifest.get("outlier_threshold"),
                     sae_ids=[str(r.sae_dir.resolve()) for r in [run] + others], progress=progress)
    result["seconds"]["total"] = round(time.perf_counter() - start, 1)
    write_result(out_dir, result)
    return result


def analyse(lm, saes, names: list[str], layer: int, passages, cfg: MultilingualConfig, partial: Path, *,
            outlier_threshold: float | None = None, sae_ids: list[str] | None = None, progress: bool = False) -> dict:
    """The result for saes[0] (and the fractions of every SAE in `by_size`) on the
    passages aligned in all of cfg.languages."""
    start = time.perf_counter()
    chosen, ids = select_passages(passages, cfg.languages, cfg.passages, lm.tokenizer, cfg.max_tokens, cfg.seed)
    if len(chosen) < 20:
        raise ConfigError(f"only {len(chosen)} passages are aligned in all of {', '.join(cfg.languages)} within "
                          f"{cfg.max_tokens} tokens: choose fewer languages or raise --max-tokens")
    threshold = outlier_threshold
    settings = {"passages": [p.key for p in chosen], "languages": list(cfg.languages), "pool": cfg.pool,
                "saes": sae_ids or names, "outlier_threshold": threshold}
    pooled = pooled_activations(lm, saes, layer, ids, how=cfg.pool, outlier_threshold=threshold,
                                partial=partial, settings=settings, tokens_per_batch=cfg.tokens_per_batch, progress=progress)
    model_seconds = time.perf_counter() - start
    lengths = torch.tensor([[len(t) for t in ids[lang]] for lang in cfg.languages], dtype=torch.float32)
    kw = dict(quantile=cfg.quantile, specific_share=cfg.specific_share, min_fires=cfg.min_fires, seed=cfg.seed)
    by_size = []
    for name, sae, acts in zip(names, saes, pooled):
        m = multilinguality(acts, **kw)
        by_size.append({"run": name, **_summary(m, int(sae.W_dec.shape[0]))})
    acts = pooled[0]
    m = multilinguality(acts, **kw)
    spearman = pairwise_correlation(acts, "spearman")
    order = [int(f) for f in torch.argsort(torch.where(m.live, m.score, torch.full_like(m.score, -2)), descending=True)[:cfg.top]]
    top = []
    for f in order:
        entry = _feature_entry(m, acts, spearman, lengths, f, cfg.languages)
        entry["examples"] = _examples(lm, saes[0], layer, acts, ids, chosen, f, cfg.languages, threshold)
        top.append(entry)
    specific_by_language = {lang: int((m.specific & (m.share.argmax(0) == i)).sum()) for i, lang in enumerate(cfg.languages)}
    edges = np.linspace(-0.2, 1.0, 49)
    live = m.live.numpy()
    return {
        "format": FORMAT, "run": names[0], "config": {k: v for k, v in asdict(cfg).items() if k != "compare"},
        "compare": names[1:], "languages": list(cfg.languages), "n_passages": len(chosen),
        "tokens_per_language": {lang: int(lengths[i].sum()) for i, lang in enumerate(cfg.languages)},
        "pool": cfg.pool, "score": "mean over language pairs of the Pearson correlation across passages",
        "baseline": "the same with each language's passages permuted independently (seed %d)" % cfg.seed,
        "rule": (f"live: fires on >= {cfg.min_fires} passage-language pairs; agnostic: score > the shuffled baseline's "
                 f"{cfg.quantile:.0%} quantile; specific: not agnostic and >= {cfg.specific_share:.0%} of its activation mass in one language"),
        **_summary(m, int(saes[0].W_dec.shape[0])),
        "mean_spearman_live": round(float(spearman[m.live].mean()), 4) if m.live.any() else 0.0,
        "specific_by_language": specific_by_language,
        "histogram": {"edges": edges.round(4).tolist(),
                      "aligned": np.histogram(m.score.numpy()[live], edges)[0].tolist(),
                      "shuffled": np.histogram(m.baseline.numpy()[live], edges)[0].tolist()},
        "top": top, "by_size": by_size,
        "seconds": {"model_and_saes": round(model_seconds, 1), "total": round(time.perf_counter() - start, 1)},
    }


def write_result(out_dir: Path, result: dict) -> None:
    from . import multilingual_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    multilingual_plots.scores(result, out_dir / "scores.png")
    if len(result["by_size"]) > 1:
        multilingual_plots.by_size(result, out_dir / "by_size.png")
    atomic.write_json(out_dir / RESULT, result)


def load_result(run_dir: Path) -> dict | None:
    """RUN/analysis/multilingual/result.json, or None when there is none (or it is damaged)."""
    path = Path(run_dir) / OUT / RESULT
    try:
        data = atomic.read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None
