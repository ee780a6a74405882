"""Harvest residual-stream activations into a sharded store, resumable after kill -9.

Cleaning is valid.py's rule (positions 0 and 1, BOS and separator tokens dropped,
tokens above the outlier threshold excluded and their fraction recorded). The store
keeps raw activations; `norm_scale` (E‖x‖ = √d after scaling) is computed at the end
from per-shard sums, so a resumed harvest gives the same scale."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from ..progress import progress_bar

from .. import atomic
from ..errors import StoreError
from ..models import LanguageModel
from .layout import MANIFEST, STATE, shard_paths
from .split import HELDOUT_FRACTION
from .valid import SKIP_POSITIONS, excluded_ids, outlier_threshold, valid_tokens

STORE_DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass(frozen=True)
class HarvestConfig:
    layer: int
    batch_contexts: int = 16  # contexts per forward: 2k tokens, enough to saturate 2 cores
    shard_contexts: int = 256  # 32k tokens, ~37 MB per shard in float16
    store_dtype: str = "float16"  # raw norms are ~1e2-1e3: float16 keeps 3 significant digits


class Tokens:
    """Packed contexts with the document id and position of every token."""

    def __init__(self, contexts: np.ndarray, doc_ids: np.ndarray, doc_pos: np.ndarray):
        if contexts.ndim != 2 or contexts.shape != doc_ids.shape or contexts.shape != doc_pos.shape:
            raise StoreError(f"token arrays disagree in shape: {contexts.shape}, {doc_ids.shape}, {doc_pos.shape}")
        self.contexts, self.doc_ids, self.doc_pos = contexts, doc_ids, doc_pos

    def digest(self) -> str:
        return hashlib.sha1(np.ascontiguousarray(self.contexts).tobytes()).hexdigest()[:16]


def _state_for(lm: LanguageModel, tokens: Tokens, cfg: HarvestConfig) -> dict:
    return {
        "model": lm.name,
        "layer": cfg.layer,
        "d": lm.d_model,
        "n_contexts": int(tokens.contexts.shape[0]),
        "ctx_len": int(tokens.contexts.shape[1]),
        "tokens_digest": tokens.digest(),
        **asdict(cfg),
    }


def _check_resumable(state_path: Path, state: dict) -> dict | None:
    if not state_path.is_file():
        return None
    previous = atomic.read_json(state_path)
    keys = ("model", "layer", "tokens_digest", "shard_contexts", "store_dtype", "n_contexts")
    diffs = [f"{k}: {previous.get(k)} != {state[k]}" for k in keys if previous.get(k) != state[k]]
    if diffs:
        raise StoreError(
            f"{state_path.parent} holds a harvest with other settings ({'; '.join(diffs)}): "
            "use a new run directory or delete it"
        )
    return previous


def _drop_incomplete(directory: Path) -> None:
    for tmp in directory.glob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)


@torch.inference_mode()
def _harvest_shard(lm: LanguageModel, tokens: Tokens, cfg: HarvestConfig, layers: list[int], lo: int, hi: int,
                   thresholds: dict[int, float], special: tuple[int, ...], bar) -> dict[int, dict]:
    """Contexts lo..hi at every layer of `layers`, one forward per batch."""
    acts = {layer: [] for layer in layers}
    rows = {layer: [] for layer in layers}
    excluded = dict.fromkeys(layers, 0)
    for start in range(lo, hi, cfg.batch_contexts):
        stop = min(start + cfg.batch_contexts, hi)
        ids = torch.from_numpy(tokens.contexts[start:stop].astype(np.int64))  # [b, T]
        resids = lm.residuals(ids, layers)
        considered = valid_tokens(ids, exclude_ids=special)
        for layer in layers:
            resid = resids[layer].float().cpu()  # [b, T, d]; .cpu(): a model on a GPU (NCCL harvest)
            norms = resid.norm(dim=-1)  # [b, T]
            keep = valid_tokens(ids, exclude_ids=special, norms=norms, outlier_threshold=thresholds[layer])
            excluded[layer] += int((considered & ~keep).sum())  # outliers only: leading positions and special tokens are not counted
            b, t = torch.nonzero(keep, as_tuple=True)
            acts[layer].append(resid[b, t].to(getattr(torch, cfg.store_dtype)).numpy())  # torch's cast: see _float32
            ctx = b.numpy() + start
            pos = t.numpy()
            rows[layer].append(np.stack([ctx, pos, tokens.doc_ids[ctx, pos], tokens.doc_pos[ctx, pos]], axis=1).astype(np.int32))
        bar.update(ids.numel())
    seen = (hi - lo) * tokens.contexts.shape[1]
    return {layer: {"data": np.concatenate(acts[layer]), "rows": np.concatenate(rows[layer]), "excluded": excluded[layer],
                    "tokens_seen": seen} for layer in layers}


def _outlier_thresholds(lm: LanguageModel, tokens: Tokens, cfg: HarvestConfig, layers: list[int]) -> dict[int, float]:
    """valid.OUTLIER_FACTOR x the median norm of the first batch, per layer, fixed before
    any shard is written so that a resumed harvest applies the same rule."""
    ids = torch.from_numpy(tokens.contexts[: cfg.batch_contexts].astype(np.int64))
    resids = lm.residuals(ids, layers)
    return {layer: outlier_threshold(resids[layer].float().norm(dim=-1).cpu(), ids, exclude_ids=excluded_ids(lm)) for layer in layers}


def harvest(
    lm: LanguageModel, tokens: Tokens, out_dir: str | Path, cfg: HarvestConfig, extra_manifest: dict | None = None, progress: bool = True
) -> dict:
    """Harvest every context of `tokens` at `cfg.layer` into `out_dir`; returns the
    manifest. Run again after an interruption to continue."""
    return harvest_layers(lm, tokens, {cfg.layer: out_dir}, cfg, extra_manifest, progress)[cfg.layer]


def harvest_layers(
    lm: LanguageModel, tokens: Tokens, out_dirs: dict[int, str | Path], cfg: HarvestConfig, extra_manifest: dict | None = None,
    progress: bool = True,
) -> dict[int, dict]:
    """Harvest every context of `tokens` at each layer of `out_dirs` ({layer: store
    directory}, `cfg.layer` ignored) from one forward per batch that stops after the
    deepest layer; each store is the one `harvest` writes for its layer alone, row for
    row. Returns {layer: manifest}. Run again after an interruption to continue.
    (activations/distributed.py runs the same three steps with the shards split across ranks.)"""
    states, manifests = begin_harvest(lm, tokens, out_dirs, cfg)
    if states:
        harvest_shards(lm, tokens, out_dirs, cfg, states, range(n_shards(tokens, cfg)), progress)
        manifests.update(finish_harvest(lm, tokens, out_dirs, cfg, states, extra_manifest))
    return manifests


def n_shards(tokens: Tokens, cfg: HarvestConfig) -> int:
    return math.ceil(tokens.contexts.shape[0] / cfg.shard_contexts)


def begin_harvest(lm: LanguageModel, tokens: Tokens, out_dirs: dict[int, str | Path], cfg: HarvestConfig) -> tuple[dict[int, dict], dict[int, dict]]:
    """Check the settings, drop half-written files and fix each layer's outlier
    threshold. Returns ({layer: harvest state} of the layers still to harvest,
    {layer: manifest} of those whose store is already complete)."""
    layers = sorted(out_dirs)
    if not layers:
        raise StoreError("no layer to harvest")
    for layer in layers:
        lm.check_layer(layer)
    if cfg.store_dtype not in STORE_DTYPES:
        raise StoreError(f"unknown store dtype {cfg.store_dtype!r}: use {' or '.join(STORE_DTYPES)}")
    if tokens.contexts.shape[0] == 0 or tokens.contexts.shape[1] < 2:
        raise StoreError("nothing to harvest: no contexts of at least 2 tokens")
    states, manifests = {}, {}
    for layer in layers:
        out = Path(out_dirs[layer])
        out.mkdir(parents=True, exist_ok=True)
        state = _state_for(lm, tokens, replace(cfg, layer=layer))
        previous = _check_resumable(out / STATE, state)
        if previous is not None and (out / MANIFEST).is_file():
            manifests[layer] = atomic.read_json(out / MANIFEST)
            continue
        _drop_incomplete(out)
        if previous is not None and "outlier_threshold" in previous:
            state["outlier_threshold"] = previous["outlier_threshold"]
        states[layer] = state
    new = [layer for layer, state in states.items() if "outlier_threshold" not in state]
    if new:
        for layer, threshold in _outlier_thresholds(lm, tokens, cfg, new).items():
            states[layer]["outlier_threshold"] = threshold
            atomic.write_json(Path(out_dirs[layer]) / STATE, states[layer])
    return states, manifests


def harvest_shards(lm: LanguageModel, tokens: Tokens, out_dirs: dict[int, str | Path], cfg: HarvestConfig, states: dict[int, dict],
                   shard_ids, progress: bool = True) -> None:
    """Harvest the shards `shard_ids` (each a fixed slice of the contexts) of every
    layer of `states`, one forward per batch for the layers a shard still lacks."""
    outs = {layer: Path(out_dirs[layer]) for layer in sorted(states)}
    thresholds = {layer: state["outlier_threshold"] for layer, state in states.items()}
    special = excluded_ids(lm)   # once: the separator's lookup builds the tokenizer's whole vocabulary (~0.25 s)
    n_ctx, ctx_len = tokens.contexts.shape
    shard_ids = list(shard_ids)
    todo = sum(min((i + 1) * cfg.shard_contexts, n_ctx) - i * cfg.shard_contexts for i in shard_ids) * ctx_len
    desc = f"harvest layer {next(iter(outs))}" if len(outs) == 1 else f"harvest layers {','.join(map(str, outs))}"
    with progress_bar(total=todo, unit="tok", unit_scale=True, desc=desc, enabled=progress) as bar:
        for i in shard_ids:
            lo, hi = i * cfg.shard_contexts, min((i + 1) * cfg.shard_contexts, n_ctx)
            missing = [layer for layer, out in outs.items() if not shard_paths(out, i)[2].is_file()]
            if not missing:
                bar.update((hi - lo) * ctx_len)
                continue
            start = time.perf_counter()
            shards = _harvest_shard(lm, tokens, cfg, missing, lo, hi, thresholds, special, bar)
            seconds = (time.perf_counter() - start) / len(missing)   # each layer's share of the forward
            for layer in missing:
                _write_shard(outs[layer], i, shards[layer], seconds)


def finish_harvest(lm: LanguageModel, tokens: Tokens, out_dirs: dict[int, str | Path], cfg: HarvestConfig, states: dict[int, dict],
                   extra_manifest: dict | None = None) -> dict[int, dict]:
    """Merge each layer's shard summaries into its manifest.json (written last: the
    store is complete). Returns {layer: manifest}."""
    manifests = {}
    for layer, state in states.items():
        out = Path(out_dirs[layer])
        summaries = []
        for i in range(n_shards(tokens, cfg)):
            json_path = shard_paths(out, i)[2]
            if not json_path.is_file():
                raise StoreError(f"{json_path} is missing: shard {i} was not harvested; run the harvest again to resume")
            summaries.append(atomic.read_json(json_path))
        manifests[layer] = _manifest(lm, tokens, layer, cfg, summaries, state, extra_manifest)
        atomic.write_json(out / MANIFEST, manifests[layer])
    return manifests


def _write_shard(out: Path, i: int, shard: dict, seconds: float) -> None:
    data_path, rows_path, json_path = shard_paths(out, i)
    data = shard["data"]
    atomic.save_npy(data_path, data)
    atomic.save_npy(rows_path, shard["rows"])
    summary = {
        "count": int(data.shape[0]),
        "norm_sum": float(np.linalg.norm(_float32(data), axis=1).sum()),
        "excluded": shard["excluded"],
        "tokens_seen": shard["tokens_seen"],
        "seconds": seconds,
    }
    atomic.write_json(json_path, summary)  # last: marks the shard complete


def _float32(data: np.ndarray) -> np.ndarray:
    """data as float32 through torch: the same bits as numpy's astype (IEEE rounding
    both ways; tests/activations/test_harvest.py), faster on this project's CPUs. On
    one batch of real residuals (2,046 x 576, SmolLM2 layers 6/15/24) numpy took 5-6
    ms to cast float32 -> float16 and 2.6-3 ms back, torch 0.1-0.4 ms; with both casts
    through torch a shard's cleaning and writing for three layers went from 3.5 s to
    1.9 s besides the forward (on a whole shard the copy back is bound by its fresh
    74 MB output either way)."""
    return torch.from_numpy(np.ascontiguousarray(data)).float().numpy()


def _manifest(lm: LanguageModel, tokens: Tokens, layer: int, cfg: HarvestConfig, summaries: list[dict], state: dict,
              extra_manifest: dict | None) -> dict:
    n_ctx, ctx_len = tokens.contexts.shape
    count = sum(s["count"] for s in summaries)
    if count == 0:
        raise StoreError(f"every token was excluded at layer {layer}: the corpus is too short or the layer is degenerate")
    mean_norm = sum(s["norm_sum"] for s in summaries) / count
    considered = count + sum(s["excluded"] for s in summaries)
    return {
        "format": "monosemantic-activations/1",
        "model": lm.name,
        "model_dtype": str(lm.dtype).removeprefix("torch."),
        "dtype_reason": lm.dtype_reason,
        "layer": layer,
        "hook_name": lm.hook_name(layer),
        "d": lm.d_model,
        "dtype": cfg.store_dtype,
        "count": count,
        "shard_counts": [s["count"] for s in summaries],
        "ctx_len": ctx_len,
        "n_contexts": n_ctx,
        "tokens_seen": sum(s["tokens_seen"] for s in summaries),
        "mean_norm": mean_norm,
        "norm_scale": math.sqrt(lm.d_model) / mean_norm,
        "outlier_threshold": state["outlier_threshold"],
        "excluded_fraction": 1 - count / considered,
        "dropped": f"positions 0..{SKIP_POSITIONS - 1} and special tokens (BOS, separator): activations/valid.py",
        "heldout_fraction": HELDOUT_FRACTION,
        "harvest_seconds": sum(s["seconds"] for s in summaries),
        "tokens_digest": state["tokens_digest"],
        **(extra_manifest or {}),
    }
