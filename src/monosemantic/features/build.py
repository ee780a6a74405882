"""Build `RUN/features.db`: stream held-out contexts through the model and the SAE
(and, with `neurons`, the MLP neurons of the same layer), keep bounded summaries
(streaming.py), then write them in one go.

Crash safety: the running summaries are checkpointed atomically to
`features.build.pt` (every `checkpoint_seconds`); the database is written into
`features.db.partial` and renamed over `features.db` only when complete. A build
killed at any moment leaves the previous `features.db` untouched and resumes from the
last checkpoint; random keys are seeded per batch, so the resumed result equals an
uninterrupted one."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..activations.harvest import Tokens
from ..errors import ConfigError, StoreError
from ..preflight import check_disk, check_memory
from ..progress import progress_bar
from ..run import Run
from ..state_file import load_state
from .config import CHECKPOINT, DEFAULT_TOKENS, PARTIAL, BuildResult, FeatureDBConfig
from .schema import DB_NAME
from .streamer import Streamer, neuron_directions, select_contexts
from .streaming import StreamConfig
from .write import existing_build_key, write_database

__all__ = ["CHECKPOINT", "DEFAULT_TOKENS", "PARTIAL", "BuildResult", "FeatureDBConfig", "build_feature_db"]


def _sae_digest(sae) -> str:
    h = hashlib.sha1()
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        t = getattr(sae, name, None)
        if t is not None:
            h.update(t.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _tokens_digest(contexts: np.ndarray, order: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(contexts[np.sort(order)]).tobytes()).hexdigest()[:16]


# Measured on the main run: 46 MB for 4,096 features (~11 kB each with their share of
# the token index); streaming state ~3 kB per feature plus one float32 [batch, T, n].
DB_BYTES_PER_FEATURE, STATE_BYTES_PER_FEATURE = 12_000, 3_000


def _preflight(run_dir: Path, n: int, ctx_len: int, cfg: "FeatureDBConfig") -> None:
    what = f"a feature database of {n:,} features"
    check_disk(run_dir, DB_BYTES_PER_FEATURE * n * 2, what + " (with its partial copy)", "the SAE's size")
    check_memory(n * (STATE_BYTES_PER_FEATURE + 3 * 4 * cfg.batch_contexts * ctx_len), what, "the SAE's size")


def _read_checkpoint(path: Path, progress: bool) -> dict | None:
    """The streaming checkpoint, or None (absent or unreadable: the build starts over)."""
    if not path.is_file():
        return None
    try:
        return load_state(path)
    except ValueError as e:
        if progress:
            print(f"features: ignoring {path} ({e}): streaming starts over", file=sys.stderr)
        return None



def build_feature_db(
    run: Run | str | Path,
    lm=None,
    sae=None,
    n_tokens: int | None = DEFAULT_TOKENS,
    neurons: bool = False,
    progress: bool = True,
    top_k: int | None = None,
    force: bool = False,
    tokens: Tokens | None = None,
    layer: int | None = None,
    cfg: FeatureDBConfig | None = None,
    checkpoint_seconds: float = 60.0,
) -> BuildResult:
    """Build RUN/features.db from the run's tokens, SAE, model and layer (each can be
    passed instead); run again after an interruption to resume. Returns a summary."""
    run = Run.of(run)
    run_dir = run.dir
    if cfg is None:
        stream = StreamConfig() if top_k is None else StreamConfig(top_k=top_k)
        cfg = FeatureDBConfig(n_tokens=n_tokens, neurons=neurons, stream=stream)
    if cfg.n_tokens is not None and cfg.n_tokens <= 0 or cfg.stream.top_k <= 0:
        raise ConfigError("--tokens and --top-k must be positive")
    manifest = run.manifest
    if lm is None:
        if "model" not in manifest:
            raise StoreError(f"{run_dir} has no finished activation store naming the model (activations/manifest.json): "
                             f"run `monosemantic harvest {run_dir}` and `monosemantic train {run_dir}` first "
                             "(from Python: pass lm=)")
        lm = run.load_model()
    if sae is None:
        sae = run.sae()
    layer = layer if layer is not None else run.layer
    if layer is None:
        raise ConfigError(f"{run_dir} does not record the layer its SAE reads (no store manifest, sae/cfg.json hook_layer "
                          "or harvest settings): pass layer=")
    lm.check_layer(layer)
    if int(sae.W_dec.shape[1]) != lm.d_model:
        raise ConfigError(f"the SAE has width {sae.W_dec.shape[1]} but {lm.name} has d_model {lm.d_model}")
    tokens = tokens if tokens is not None else run.tokens()
    n_ctx, T = tokens.contexts.shape
    order, n_heldout = select_contexts(n_ctx, T, cfg.n_tokens)

    settings = {"tokens": cfg.n_tokens, "neurons": cfg.neurons, "top_k": cfg.stream.top_k}
    _preflight(run_dir, int(sae.W_dec.shape[0]), T, cfg)
    run.record("features", settings, replace=force)
    build_key = {"cfg": cfg.to_dict(), "sae": _sae_digest(sae), "tokens": _tokens_digest(tokens.contexts, order),
                 "model": lm.name, "layer": layer}
    db_path, partial, ckpt_path = run_dir / DB_NAME, run_dir / PARTIAL, run_dir / CHECKPOINT
    if force:
        for p in (partial, ckpt_path):
            p.unlink(missing_ok=True)
    elif existing_build_key(db_path) == json.loads(json.dumps(build_key)):
        return BuildResult(db_path, -1, int(sae.W_dec.shape[0]), 0, 0.0, 0.0, db_path.stat().st_size, reused=True)
    partial.unlink(missing_ok=True)  # a partial database is never resumed: it is rewritten from the checkpoint

    if hasattr(sae, "eval"):
        sae.eval()
    streamer = Streamer(lm, sae, layer, tokens, order, cfg, manifest.get("outlier_threshold"))
    state = _read_checkpoint(ckpt_path, progress)
    if state is not None and state.get("build_key") != json.loads(json.dumps(build_key)):
        state = None  # another build's checkpoint
    start_batch, stream_seconds = 0, 0.0
    if state is not None:
        start_batch, stream_seconds = state["next_batch"], state["stream_seconds"]
        streamer.threshold = state["threshold"]
        for kind, s in streamer.streams.items():
            s.load_state_dict(state["streams"][kind])
    elif streamer.threshold is None:
        streamer.threshold = streamer.outlier_threshold()
    if n_heldout < len(order) and progress and start_batch == 0 and cfg.n_tokens is not None:
        print(f"features: only {n_heldout} held-out contexts; adding {len(order) - n_heldout} training contexts "
              f"to reach {cfg.n_tokens:,} tokens", file=sys.stderr)

    def checkpoint(next_batch: int) -> None:
        atomic.write_with(ckpt_path, lambda p: torch.save({
            "build_key": json.loads(json.dumps(build_key)), "next_batch": next_batch, "stream_seconds": stream_seconds,
            "threshold": streamer.threshold, "streams": {k: s.state_dict() for k, s in streamer.streams.items()},
        }, p))

    last_checkpoint = time.monotonic()
    with progress_bar(total=streamer.n_batches, initial=start_batch, unit="batch", desc=f"features layer {layer}", enabled=progress) as bar:
        for i in range(start_batch, streamer.n_batches):
            t0 = time.perf_counter()
            streamer.step(i)
            stream_seconds += time.perf_counter() - t0
            bar.update(1)
            if time.monotonic() - last_checkpoint >= checkpoint_seconds and i + 1 < streamer.n_batches:
                checkpoint(i + 1)
                last_checkpoint = time.monotonic()
    if state is None or start_batch < streamer.n_batches:
        checkpoint(streamer.n_batches)  # streaming done: a kill while writing resumes here

    t0 = time.perf_counter()
    kinds = {"feature": (streamer.streams["feature"], sae.W_dec.detach().float())}
    if cfg.neurons:
        kinds["neuron"] = (streamer.streams["neuron"], neuron_directions(streamer.neuron_module))
    feat = streamer.streams["feature"]
    meta = {
        "model": lm.name, "model_spec": manifest.get("model_spec", lm.name), "layer": layer, "d_model": lm.d_model,
        "n_features": feat.n, "n_neurons": streamer.streams["neuron"].n if cfg.neurons else 0,
        "n_tokens": feat.n_tokens, "n_contexts": len(order), "heldout_contexts": n_heldout, "ctx_len": T,
        "outlier_threshold": streamer.threshold, "hist_log10_edges": cfg.stream.hist_edges(),
        "l0_hist": feat.l0_hist.tolist(), "config": cfg.to_dict(), "build_key": build_key,
        "stream_seconds": stream_seconds, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "bos_id": lm.bos_id, "norm_scale": manifest.get("norm_scale"),
    }
    write_database(partial, meta, kinds, lm, np.asarray(tokens.contexts), cfg)
    os.replace(partial, db_path)
    ckpt_path.unlink(missing_ok=True)
    n_neurons = streamer.streams["neuron"].n if cfg.neurons else 0
    return BuildResult(db_path, feat.n_tokens, feat.n, n_neurons, stream_seconds, time.perf_counter() - t0, db_path.stat().st_size)
