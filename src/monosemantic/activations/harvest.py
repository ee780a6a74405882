"""Harvest residual-stream activations into a sharded store, resumable after kill -9.

Cleaning is valid.py's rule (positions 0 and 1, BOS and separator tokens dropped,
tokens above the outlier threshold excluded and their fraction recorded). The store
keeps raw activations; `norm_scale` (E‖x‖ = √d after scaling) is computed at the end
from per-shard sums, so a resumed harvest gives the same scale."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
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
def _harvest_shard(lm: LanguageModel, tokens: Tokens, cfg: HarvestConfig, lo: int, hi: int, threshold: float, bar) -> dict:
    acts, rows, excluded = [], [], 0
    special = excluded_ids(lm)
    for start in range(lo, hi, cfg.batch_contexts):
        stop = min(start + cfg.batch_contexts, hi)
        ids = torch.from_numpy(tokens.contexts[start:stop].astype(np.int64))  # [b, T]
        resid = lm.residual(ids, cfg.layer).float()  # [b, T, d]
        norms = resid.norm(dim=-1)  # [b, T]
        considered = valid_tokens(ids, exclude_ids=special)
        keep = valid_tokens(ids, exclude_ids=special, norms=norms, outlier_threshold=threshold)
        excluded += int((considered & ~keep).sum())  # outliers only: leading positions and special tokens are not counted
        b, t = torch.nonzero(keep, as_tuple=True)
        acts.append(resid[b, t].numpy().astype(STORE_DTYPES[cfg.store_dtype]))
        ctx = b.numpy() + start
        pos = t.numpy()
        rows.append(np.stack([ctx, pos, tokens.doc_ids[ctx, pos], tokens.doc_pos[ctx, pos]], axis=1).astype(np.int32))
        bar.update(ids.numel())
    data = np.concatenate(acts)
    return {"data": data, "rows": np.concatenate(rows), "excluded": excluded, "tokens_seen": (hi - lo) * tokens.contexts.shape[1]}


def _outlier_threshold(lm: LanguageModel, tokens: Tokens, cfg: HarvestConfig) -> float:
    """valid.OUTLIER_FACTOR x the median norm of the first batch, fixed before any shard is
    written so that a resumed harvest applies the same rule."""
    ids = torch.from_numpy(tokens.contexts[: cfg.batch_contexts].astype(np.int64))
    norms = lm.residual(ids, cfg.layer).float().norm(dim=-1)
    return outlier_threshold(norms, ids, exclude_ids=excluded_ids(lm))


def harvest(
    lm: LanguageModel, tokens: Tokens, out_dir: str | Path, cfg: HarvestConfig, extra_manifest: dict | None = None, progress: bool = True
) -> dict:
    """Harvest every context of `tokens` at `cfg.layer` into `out_dir`; returns the
    manifest. Run again after an interruption to continue."""
    lm.check_layer(cfg.layer)
    if cfg.store_dtype not in STORE_DTYPES:
        raise StoreError(f"unknown store dtype {cfg.store_dtype!r}: use {' or '.join(STORE_DTYPES)}")
    if tokens.contexts.shape[0] == 0 or tokens.contexts.shape[1] < 2:
        raise StoreError("nothing to harvest: no contexts of at least 2 tokens")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _state_for(lm, tokens, cfg)
    previous = _check_resumable(out / STATE, state)
    if previous is not None and (out / MANIFEST).is_file():
        return atomic.read_json(out / MANIFEST)
    _drop_incomplete(out)
    if previous is None or "outlier_threshold" not in previous:
        state["outlier_threshold"] = _outlier_threshold(lm, tokens, cfg)
        atomic.write_json(out / STATE, state)
    else:
        state["outlier_threshold"] = previous["outlier_threshold"]

    n_ctx, ctx_len = tokens.contexts.shape
    n_shards = math.ceil(n_ctx / cfg.shard_contexts)
    summaries = []
    with progress_bar(total=n_ctx * ctx_len, unit="tok", unit_scale=True, desc=f"harvest layer {cfg.layer}", enabled=progress) as bar:
        for i in range(n_shards):
            data_path, rows_path, json_path = shard_paths(out, i)
            lo, hi = i * cfg.shard_contexts, min((i + 1) * cfg.shard_contexts, n_ctx)
            if json_path.is_file():
                summaries.append(atomic.read_json(json_path))
                bar.update((hi - lo) * ctx_len)
                continue
            start = time.perf_counter()
            shard = _harvest_shard(lm, tokens, cfg, lo, hi, state["outlier_threshold"], bar)
            data = shard["data"]
            atomic.save_npy(data_path, data)
            atomic.save_npy(rows_path, shard["rows"])
            summary = {
                "count": int(data.shape[0]),
                "norm_sum": float(np.linalg.norm(data.astype(np.float32), axis=1).sum()),
                "excluded": shard["excluded"],
                "tokens_seen": shard["tokens_seen"],
                "seconds": time.perf_counter() - start,
            }
            atomic.write_json(json_path, summary)  # last: marks the shard complete
            summaries.append(summary)

    count = sum(s["count"] for s in summaries)
    if count == 0:
        raise StoreError("every token was excluded: the corpus is too short or the layer is degenerate")
    mean_norm = sum(s["norm_sum"] for s in summaries) / count
    considered = count + sum(s["excluded"] for s in summaries)
    manifest = {
        "format": "monosemantic-activations/1",
        "model": lm.name,
        "model_dtype": str(lm.dtype).removeprefix("torch."),
        "dtype_reason": lm.dtype_reason,
        "layer": cfg.layer,
        "hook_name": lm.hook_name(cfg.layer),
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
    atomic.write_json(out / MANIFEST, manifest)
    return manifest
