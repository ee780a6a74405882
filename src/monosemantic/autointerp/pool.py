"""The text every offline scorer reads: an explain side (training contexts of the
run's store, sampled evenly over corpus sources) and a score side (the run's held-out
contexts, which neither the SAE nor any explanation saw), run once through the model
up to the SAE's layer, keeping the residual stream and the MLP neurons of that layer.

All units (units.py) are read off this one forward, so features, neurons and the
baselines are judged on exactly the same tokens."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..activations.harvest import Tokens
from ..activations.split import is_heldout
from ..activations.valid import outlier_threshold, valid_tokens
from ..errors import ConfigError


@dataclass(frozen=True)
class PoolConfig:
    n_explain: int = 96  # training contexts the unit's examples come from
    n_score: int = 128  # held-out contexts the scores are measured on (all of them if fewer)
    seed: int = 0
    batch_contexts: int = 8


@dataclass
class Pool:
    ids: torch.Tensor  # [N, T] int64, position 0 = the BOS-like token
    rows: np.ndarray  # [N] the contexts' rows in RUN/tokens
    heldout: torch.Tensor  # [N] bool: True = score side, False = explain side
    valid: torch.Tensor  # [N, T] bool: scored tokens (no sink, BOS or norm outlier)
    resid: torch.Tensor  # [N, T, d] float32, zero where not valid
    neurons: torch.Tensor  # [N, T, d_mlp] float32 (MLP activations entering down_proj), zero where not valid
    sources: list[str]  # [N] the corpus source of each context's main document
    doc_ids: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N, T]

    @property
    def explain_valid(self) -> torch.Tensor:
        return self.valid & ~self.heldout[:, None]

    @property
    def score_valid(self) -> torch.Tensor:
        return self.valid & self.heldout[:, None]


def doc_sources(root: Path) -> dict[int, str]:
    """doc id -> corpus source, from RUN/tokens/docs.jsonl ({} when absent)."""
    path = root / "tokens" / "docs.jsonl"
    out: dict[int, str] = {}
    if path.is_file():
        with open(path) as f:
            for line in f:
                d = json.loads(line)
                out[int(d["doc_id"])] = str(d.get("source", "?"))
    return out


def context_sources(doc_ids: np.ndarray, sources: dict[int, str]) -> list[str]:
    """The source of the document holding most of each context's tokens."""
    out = []
    for row in np.asarray(doc_ids):
        row = row[row >= 0]
        main = Counter(row.tolist()).most_common(1)[0][0] if row.size else -1
        out.append(sources.get(int(main), "?"))
    return out


def choose_contexts(n_contexts: int, sources: list[str], cfg: PoolConfig) -> tuple[np.ndarray, np.ndarray]:
    """(explain rows, score rows): held-out contexts for scoring; for explaining,
    training contexts dealt round-robin over corpus sources in a seeded order, so
    small sources (a language of the handbook) are not drowned by large ones."""
    ids = np.arange(n_contexts)
    held = is_heldout(ids)
    rng = np.random.default_rng(cfg.seed)
    score = rng.permutation(ids[held])[: cfg.n_score]
    by_source: dict[str, list[int]] = {}
    for i in rng.permutation(ids[~held]):
        by_source.setdefault(sources[i], []).append(int(i))
    queues = [by_source[s] for s in sorted(by_source)]
    explain: list[int] = []
    while len(explain) < cfg.n_explain and any(queues):
        for q in queues:
            if q and len(explain) < cfg.n_explain:
                explain.append(q.pop())
    if len(score) == 0 or not explain:
        raise ConfigError(f"the run's tokens have {held.sum()} held-out and {(~held).sum()} training contexts: "
                          "interpret needs both (harvest more tokens)")
    return np.sort(np.array(explain)), np.sort(score)


class UnitForward:
    """Runs the model up to `layer` and returns the residual after it and the MLP
    neurons of that layer (captured at the input of its output projection)."""

    def __init__(self, lm, layer: int):
        from ..features.streamer import mlp_neuron_module

        self.lm, self.layer = lm, layer
        self.neuron_module = mlp_neuron_module(lm.blocks[layer])

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor, cache=None) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [B, T] (following the positions in `cache`, a KV cache, when given)."""
        captured: list[torch.Tensor] = []
        handle = self.neuron_module.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        try:
            resid = self.lm.residual(ids, self.layer, cache=cache).float()  # [B, T, d]
        finally:
            handle.remove()
        return resid, captured[0].float()  # [B, T, d_mlp]


def cached_pool(path: Path, key: dict, build) -> Pool:
    """The pool saved at `path` (safetensors + its key, no pickle) if its key matches,
    else build() written there atomically: a resumed run skips the forward."""
    from safetensors.torch import load_file, save_file

    from .. import atomic

    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        saved = atomic.read_json(meta)
        if saved.get("key") == json.loads(json.dumps(key)):
            t = load_file(path)
            return Pool(t["ids"], t["rows"].numpy(), t["heldout"], t["valid"], t["resid"], t["neurons"], saved["sources"], t["doc_ids"].numpy())
    pool = build()
    tensors = {"ids": pool.ids, "rows": torch.from_numpy(np.asarray(pool.rows, np.int64)), "heldout": pool.heldout,
               "valid": pool.valid, "resid": pool.resid.contiguous(), "neurons": pool.neurons.contiguous(),
               "doc_ids": torch.from_numpy(np.asarray(pool.doc_ids, np.int64))}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_with(path, lambda p: save_file(tensors, str(p)))
    atomic.write_json(meta, {"key": key, "sources": pool.sources})
    return pool


def build_pool(lm, layer: int, tokens: Tokens, sources: dict[int, str], cfg: PoolConfig, threshold: float | None = None,
               progress: bool = False) -> Pool:
    n_ctx = tokens.contexts.shape[0]
    ctx_sources = context_sources(tokens.doc_ids, sources)
    explain, score = choose_contexts(n_ctx, ctx_sources, cfg)
    rows = np.concatenate([explain, score])
    heldout = torch.zeros(len(rows), dtype=torch.bool)
    heldout[len(explain):] = True
    ids = torch.from_numpy(np.asarray(tokens.contexts[rows]).astype(np.int64))
    forward = UnitForward(lm, layer)
    resid_parts, neuron_parts = [], []
    n_batches = math.ceil(len(rows) / cfg.batch_contexts)
    for b in tqdm(range(n_batches), desc="interpret: text pool", unit="batch", disable=not progress):
        r, n = forward(ids[b * cfg.batch_contexts : (b + 1) * cfg.batch_contexts])
        resid_parts.append(r)
        neuron_parts.append(n)
    resid, neurons = torch.cat(resid_parts), torch.cat(neuron_parts)
    norms = resid.norm(dim=-1)
    if threshold is None:
        threshold = outlier_threshold(norms, ids, exclude_ids=[lm.bos_id])
    valid = valid_tokens(ids, exclude_ids=[lm.bos_id], norms=norms, outlier_threshold=threshold)  # the one rule (activations/valid.py)
    resid.mul_(valid[..., None])
    neurons.mul_(valid[..., None])
    return Pool(ids, rows, heldout, valid, resid, neurons, [ctx_sources[i] for i in rows], np.asarray(tokens.doc_ids[rows]))
