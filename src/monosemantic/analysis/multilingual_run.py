"""`monosemantic multilingual RUN`: how language-agnostic a run's features are, on the
corpus's aligned passages (data/parallel.py), written to RUN/analysis/multilingual/
(result.json, scores.png, by_size.png). Other runs on the same store (a size family)
are scored in the same pass: the model runs once, every SAE encodes its residuals."""

from __future__ import annotations

import time
from pathlib import Path

from .. import atomic
from ..data.corpus import cache_dir
from ..data.parallel import ensure_parallel
from ..errors import ConfigError, StoreError
from ..run import ANALYSIS_DTYPE, Run
from .multilingual_config import MultilingualConfig
from .multilingual_result import FORMAT, analyse

OUT = Path("analysis") / "multilingual"
RESULT = "result.json"


def _check_same_store(run: Run, other: Run) -> None:
    if other.layer != run.layer or (other.model_name or run.model_name) != (run.model_name or other.model_name):
        raise ConfigError(f"{other.dir} is not on the same model and layer as {run.dir} "
                          f"({other.model_name} layer {other.layer} vs {run.model_name} layer {run.layer}): compare runs of one store")


def run_multilingual(run: Run | str | Path, cfg: MultilingualConfig | None = None, corpus_dir: Path | None = None,
                     progress: bool = True) -> dict:
    cfg = cfg or MultilingualConfig()
    run = Run.of(run)
    start = time.perf_counter()
    out_dir = run.dir / OUT
    others = [Run.of(c) for c in cfg.compare]
    for r in [run] + others:
        if not r.has_sae:
            raise StoreError(f"{r.dir} has no SAE (sae/cfg.json + sae_weights.safetensors): train one first (`monosemantic train {r.dir}`)")
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


def write_result(out_dir: Path, result: dict) -> None:
    from . import multilingual_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    multilingual_plots.scores(result, out_dir / "scores.png")
    if len(result["by_size"]) > 1:
        multilingual_plots.by_size(result, out_dir / "by_size.png")
    else:
        (out_dir / "by_size.png").unlink(missing_ok=True)   # from an earlier --compare: not this result
    atomic.write_json(out_dir / RESULT, result)


def load_result(run_dir: Path) -> dict | None:
    """RUN/analysis/multilingual/result.json, or None when there is none (or it is damaged)."""
    path = Path(run_dir) / OUT / RESULT
    try:
        data = atomic.read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None
