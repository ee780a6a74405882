"""k-sparse probing on the text pool for every family of units at once: all SAE
features, all MLP neurons, all residual dimensions, all principal directions.
Sequence tasks read each 32-token chunk's mean activation (train: explain-side
contexts, test: held-out ones); the token task reads single tokens."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import numpy as np
import torch

from . import probing
from .units import principal_directions

CHUNK = 32
TOKENS_PER_SIDE = 3000


def _family_acts(pool, sae, explain_resid: torch.Tensor):
    mean = explain_resid.mean(0)
    pcs = principal_directions(explain_resid)
    return {
        "feature": lambda r, h: sae.encode(r.reshape(-1, r.shape[-1])).float().reshape(*r.shape[:-1], -1),
        "neuron": lambda r, h: h,
        "residual": lambda r, h: r,
        "pca": lambda r, h: (r - mean) @ pcs.T,
    }


@torch.no_grad()
def run_probing(pool, sae, lm, explain_resid: torch.Tensor, seed: int = 0) -> dict:
    N, T = pool.ids.shape
    spans = [(s, min(s + CHUNK, T)) for s in range(1, T, CHUNK)]
    labels, train, chunk_rows = [], [], []
    for r in range(N):
        for a, b in spans:
            m = pool.valid[r, a:b]
            if m.sum() < CHUNK // 2:
                continue
            chunk_rows.append((r, a, b))
            labels.append(pool.sources[r])
            train.append(not bool(pool.heldout[r]))
    train = np.array(train)
    rng = np.random.default_rng(seed)
    tok_side = {}
    for side, mask in (("train", pool.explain_valid), ("test", pool.score_valid)):
        pos = torch.nonzero(mask).numpy()
        tok_side[side] = pos[rng.choice(len(pos), min(TOKENS_PER_SIDE, len(pos)), replace=False)]
    tok_pos = np.concatenate([tok_side["train"], tok_side["test"]])
    tok_train = np.arange(len(tok_pos)) < len(tok_side["train"])
    bracket = {r: probing.inside_brackets([lm.tokenizer.decode([int(t)]) for t in pool.ids[r]]) for r in set(tok_pos[:, 0].tolist())}
    tok_y = np.array([bracket[r][p] for r, p in tok_pos])

    tasks = probing.sequence_tasks(labels, train)
    tasks.append(probing.Task("token/inside_brackets", np.arange(len(tok_y)), tok_y, tok_train))
    results = []
    for family, fn in _family_acts(pool, sae, explain_resid).items():
        seq_x, tok_x = [], torch.zeros(0)
        tok_parts = {}
        for r0 in range(0, N, 8):
            acts = fn(pool.resid[r0 : r0 + 8], pool.neurons[r0 : r0 + 8]) * pool.valid[r0 : r0 + 8, :, None]  # [b, T, n]
            for r, a, b in (c for c in chunk_rows if r0 <= c[0] < r0 + 8):
                m = pool.valid[r, a:b].float()
                seq_x.append((acts[r - r0, a:b] * m[:, None]).sum(0) / m.sum())
            for j, (r, p) in enumerate(tok_pos):
                if r0 <= r < r0 + 8:
                    tok_parts[j] = acts[r - r0, p]
        seq_x = torch.stack(seq_x)
        tok_x = torch.stack([tok_parts[j] for j in range(len(tok_pos))])
        for task in tasks:
            x = tok_x if task.name.startswith("token/") else seq_x
            results += probing.probe(x, task, family, seed=seed)
    counts = Counter(labels)
    return {"results": [asdict(r) for r in results], "summary": probing.summarise(results),
            "tasks": sorted({r.task for r in results}), "chunks": len(chunk_rows), "chunk_len": CHUNK,
            "tokens": int(len(tok_y)), "token_positive_fraction": float(tok_y.mean()), "sources": dict(counts)}
