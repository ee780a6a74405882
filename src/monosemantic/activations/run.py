"""The harvest stage of a run directory: corpus -> packed tokens -> activation store."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from .. import data
from ..errors import ConfigError
from ..models import LanguageModel
from ..preflight import check_disk
from ..run import ANALYSIS_DTYPE, Run
from .harvest import HarvestConfig, Tokens, harvest

DEFAULT_TOKENS = 300_000  # ≥ 250k kept after dropping position 0 and outliers
DEFAULT_CTX_LEN = 128


def prepare_tokens(run_dir: Path, lm: LanguageModel, n_tokens: int, ctx_len: int, inputs: list[str] | None, seed: int, progress: bool = True) -> tuple[Tokens, dict]:
    """Build (or reuse) the corpus and pack it into RUN/tokens; returns the tokens
    and the corpus manifest."""
    corpus_dir = data.build_corpus(inputs=inputs, out=None if inputs is None else run_dir / "corpus", seed=seed, progress=progress)
    corpus = data.load_corpus(corpus_dir)
    n_contexts = math.ceil(n_tokens / (ctx_len - 1))
    packed = data.prepare_run_tokens(
        run_dir / "tokens", corpus, lm.tokenizer, ctx_len=ctx_len, bos_id=lm.bos_id, sep_id=lm.sep_id,
        max_contexts=n_contexts, seed=seed,
    )
    return Tokens(packed.contexts, packed.doc_ids, packed.doc_pos), corpus.manifest


def harvest_run(
    run: Run | str | Path,
    model: str = "embedded",
    layer: int | None = None,
    n_tokens: int = DEFAULT_TOKENS,
    ctx_len: int = DEFAULT_CTX_LEN,
    inputs: list[str] | None = None,
    dtype: str = ANALYSIS_DTYPE,
    seed: int = 0,
    force: bool = False,
    lm: LanguageModel | None = None,
    progress: bool = True,
) -> dict:
    """Harvest `n_tokens` of corpus text at `layer` (default: the middle layer) into
    RUN/activations; run again to resume. Returns the store manifest."""
    if n_tokens <= 0 or ctx_len < 2:
        raise ConfigError("--tokens must be positive and --ctx-len at least 2")
    run = Run.of(run)
    run_dir = run.dir
    lm = lm or run.load_model(dtype, spec=model)
    layer = lm.default_layer if layer is None else layer
    lm.check_layer(layer)
    settings = {"model": model, "layer": layer, "tokens": n_tokens, "ctx_len": ctx_len, "inputs": inputs, "seed": seed}
    if force:
        for stale in ("tokens", "activations", "corpus"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
    # float16 activations plus three int32 token arrays per token, and ~10 % for manifests and the corpus
    check_disk(run_dir, 1.1 * n_tokens * (2 * lm.d_model + 12), f"harvesting {n_tokens:,} tokens", "--tokens")
    # Settings bind the run once it holds data: a harvest that failed before writing
    # any can be rerun with corrected flags without --force.
    started = (run_dir / "tokens").is_dir() or (run_dir / "activations").is_dir()
    run.record("harvest", settings, replace=force or not started)
    tokens, corpus_manifest = prepare_tokens(run_dir, lm, n_tokens, ctx_len, inputs, seed, progress)
    sources = [
        {"name": name, **{k: v for k, v in info.items() if k in ("documents", "characters", "licence", "package")}}
        for name, info in corpus_manifest.get("sources", {}).items()
    ]
    return harvest(
        lm, tokens, run_dir / "activations", HarvestConfig(layer=layer),
        extra_manifest={"model_spec": model, "sources": sources}, progress=progress,
    )
