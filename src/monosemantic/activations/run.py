"""The harvest stage of a run directory: corpus -> packed tokens -> activation store."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from .. import data
from ..distributed import World, check_shared_dir
from ..errors import ConfigError
from ..models import LanguageModel
from ..preflight import check_disk
from ..run import ANALYSIS_DTYPE, Run
from .distributed import harvest_on, main_first
from .harvest import HarvestConfig, Tokens

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
    layers: list[int] | None = None,
    world: World | None = None,
) -> dict:
    """Harvest `n_tokens` of corpus text at `layer` (default: the middle layer) into
    RUN/activations; run again to resume. Returns the store manifest. With `layers`
    (several), one forward per batch fills one store per layer,
    RUN/activations-layer{L} (see `layer_store`); returns the deepest one's manifest."""
    if n_tokens <= 0 or ctx_len < 2:
        raise ConfigError("--tokens must be positive and --ctx-len at least 2")
    if layers and layer is not None:
        raise ConfigError("give --layer or --layers, not both")
    run = Run.of(run)
    run_dir = run.dir
    world = world or World()
    lm = lm or run.load_model(dtype, spec=model, device=str(world.device))  # cuda:LOCAL_RANK under NCCL
    layers = sorted(set(layers)) if layers else None
    layer = lm.default_layer if layer is None and not layers else layer
    for checked in layers or [layer]:
        lm.check_layer(checked)
    settings = {"model": model, "layer": layer, "tokens": n_tokens, "ctx_len": ctx_len, "inputs": inputs, "seed": seed}
    if layers:
        settings["layers"] = layers
    world.agree("the harvest settings", settings)
    # float16 activations (one store per layer) plus three int32 token arrays per token, and ~10 % for manifests and the corpus
    check_disk(run_dir, 1.1 * n_tokens * (2 * lm.d_model * len(layers or [layer]) + 12), f"harvesting {n_tokens:,} tokens", "--tokens")
    check_shared_dir(world, run_dir)  # before rank 0 writes the corpus and tokens the others then read

    def start() -> tuple[Tokens, dict]:  # rank 0 first; the others reuse its corpus and tokens
        if force and world.is_main:
            stores = [layer_store(run_dir, x).name for x in layers or []]
            for stale in ("tokens", "activations", "corpus", *stores):
                shutil.rmtree(run_dir / stale, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        if world.is_main:
            # Settings bind the run once it holds data: a harvest that failed before
            # writing any can be rerun with corrected flags without --force.
            started = (run_dir / "tokens").is_dir() or (run_dir / "activations").is_dir()
            run.record("harvest", settings, replace=force or not started)
        return prepare_tokens(run_dir, lm, n_tokens, ctx_len, inputs, seed, progress and world.is_main)

    tokens, corpus_manifest = main_first(world, start)
    sources = [
        {"name": name, **{k: v for k, v in info.items() if k in ("documents", "characters", "licence", "package")}}
        for name, info in corpus_manifest.get("sources", {}).items()
    ]
    out_dirs = {x: layer_store(run_dir, x) for x in layers} if layers else {layer: run_dir / "activations"}
    deepest = max(out_dirs)
    manifests = harvest_on(world, lm, tokens, out_dirs, HarvestConfig(layer=deepest),
                           extra_manifest={"model_spec": model, "sources": sources}, progress=progress)
    return manifests[deepest]


def layer_store(run_dir: str | Path, layer: int) -> Path:
    """Where `harvest --layers` puts layer L's store: train on it with
    `--activations RUN/activations-layerL`."""
    return Path(run_dir) / f"activations-layer{layer}"
