"""Feature activations on aligned passages: choosing the passages, running the model
once over them for one or several SAEs of the same store, pooling each passage's valid
tokens (activations/valid.py, the same rule as harvest and the feature database), and
the per-token activations of a few passages for display.

The model runs once per language; each language's pooled activations are saved
(atomically) in a `partial/` folder before the next starts, so a killed analysis
resumes at the language it was in."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch

from .. import atomic
from ..activations.valid import excluded_ids, valid_tokens
from ..data.parallel import Passage
from ..errors import ConfigError
from ..progress import progress_bar
from ..token_text import token_pieces, token_texts

POOLS = ("max", "mean")


def select_passages(passages: Sequence[Passage], languages: Sequence[str], n: int, tokenizer,
                    max_tokens: int, seed: int = 0) -> tuple[list[Passage], dict[str, list[list[int]]]]:
    """Up to n passages present in every language with at most max_tokens tokens in
    each (so none is cut, and the same text is compared), drawn with `seed`, in key
    order; and their token ids per language."""
    complete = [p for p in passages if all(lang in p.texts for lang in languages)]
    random.Random(seed).shuffle(complete)
    chosen, ids = [], {lang: [] for lang in languages}
    for p in complete:
        toks = {lang: tokenizer(p.texts[lang], add_special_tokens=False)["input_ids"] for lang in languages}
        if max(len(t) for t in toks.values()) > max_tokens:
            continue
        chosen.append((p, toks))
        if len(chosen) == n:
            break
    chosen.sort(key=lambda pt: pt[0].key)
    for _, toks in chosen:
        for lang in languages:
            ids[lang].append(list(toks[lang]))
    return [p for p, _ in chosen], ids


@dataclass
class Batch:
    ids: torch.Tensor     # [B, T] with the BOS-like token first, right-padded
    valid: torch.Tensor   # [B, T] bool
    rows: list[int]       # passage index of each row


def batches(lm, token_ids: list[list[int]], tokens_per_batch: int):
    """Passages grouped by length (little padding), each with the BOS-like token first."""
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    i = 0
    while i < len(order):
        T = len(token_ids[order[i]]) + 1
        rows = []
        while i < len(order) and (len(rows) + 1) * (len(token_ids[order[i]]) + 1) <= max(tokens_per_batch, T):
            rows.append(order[i])
            i += 1
        T = max(len(token_ids[r]) for r in rows) + 1
        ids = torch.full((len(rows), T), int(lm.bos_id), dtype=torch.long)
        pad = torch.zeros((len(rows), T), dtype=torch.bool)
        for b, r in enumerate(rows):
            ids[b, 1 : len(token_ids[r]) + 1] = torch.tensor(token_ids[r], dtype=torch.long)
            pad[b, len(token_ids[r]) + 1 :] = True
        yield Batch(ids, ~pad, rows)


def _valid(lm, batch: Batch, resid: torch.Tensor, outlier_threshold: float | None) -> torch.Tensor:
    norms = resid.norm(dim=-1) if outlier_threshold is not None else None
    return valid_tokens(batch.ids, exclude_ids=excluded_ids(lm), norms=norms, outlier_threshold=outlier_threshold) & batch.valid


class Pooled(NamedTuple):
    acts: torch.Tensor    # [..., n] max or mean over the valid tokens
    peak: torch.Tensor    # [..., n] token id where the feature peaks (-1 where it never fires)


def pool(acts: torch.Tensor, valid: torch.Tensor, how: str, ids: torch.Tensor | None = None) -> Pooled:
    """acts [B, T, n] >= 0, valid [B, T] -> [B, n]: max or mean over the valid tokens
    (0 for a passage without any), and the id (from ids [B, T]) of the token where each
    feature is largest."""
    masked = acts * valid[..., None]
    top, where = masked.max(1)                                              # [B, n]
    peak = torch.full_like(where, -1) if ids is None else torch.gather(ids, 1, where)
    peak = torch.where(top > 0, peak, torch.full_like(peak, -1))
    if how == "max":
        return Pooled(top, peak)
    if how == "mean":
        return Pooled(masked.sum(1) / valid.sum(1, keepdim=True).clamp_min(1), peak)
    raise ConfigError(f"unknown pooling {how!r}: choose {' or '.join(POOLS)}")
def _settings_digest(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def pooled_activations(lm, saes: Sequence, layer: int, token_ids: dict[str, list[list[int]]], *, how: str,
                       outlier_threshold: float | None, partial: Path, settings: dict,
                       tokens_per_batch: int = 2048, progress: bool = True) -> list[Pooled]:
    """Per SAE, [L, P, n] pooled activations and peak token ids (languages in
    token_ids' order). `settings` identifies the work: a partial/ folder left by other
    settings is cleared."""
    partial = Path(partial)
    digest = _settings_digest(settings)
    stamp = partial / "settings.json"
    if stamp.is_file() and atomic.read_json(stamp).get("digest") != digest:
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    atomic.write_json(stamp, {"digest": digest, **settings})
    langs = list(token_ids)
    out = [[None] * len(langs) for _ in saes]
    total = sum(len(t) + 1 for lang in langs for t in token_ids[lang])
    bar = progress_bar(total=total, unit="tok", desc="multilingual: model + SAEs", enabled=progress)
    for li, lang in enumerate(langs):
        files = [(partial / f"sae{s}-{lang}.npy", partial / f"sae{s}-{lang}-peak.npy") for s in range(len(saes))]
        if all(f.is_file() and g.is_file() for f, g in files):
            for s, (f, g) in enumerate(files):
                out[s][li] = Pooled(torch.from_numpy(np.load(f, allow_pickle=False)), torch.from_numpy(np.load(g, allow_pickle=False)))
            bar.update(sum(len(t) + 1 for t in token_ids[lang]))
            continue
        P = len(token_ids[lang])
        acc = [Pooled(torch.zeros(P, int(sae.W_dec.shape[0])), torch.zeros(P, int(sae.W_dec.shape[0]), dtype=torch.int32)) for sae in saes]
        with torch.inference_mode():
            for batch in batches(lm, token_ids[lang], tokens_per_batch):
                resid = lm.residual(batch.ids, layer).float()                  # [B, T, d]
                valid = _valid(lm, batch, resid, outlier_threshold)             # [B, T]
                for s, sae in enumerate(saes):
                    pooled = pool(sae.encode(resid).float(), valid, how, batch.ids)   # [B, n] each
                    acc[s].acts[batch.rows] = pooled.acts
                    acc[s].peak[batch.rows] = pooled.peak.int()
                bar.update(sum(len(token_ids[lang][r]) + 1 for r in batch.rows))   # padding not counted
        for s, (f, g) in enumerate(files):   # the peaks first: the activations' file marks the language done
            atomic.save_npy(g, acc[s].peak.numpy())
            atomic.save_npy(f, acc[s].acts.numpy())
            out[s][li] = acc[s]
    bar.close()
    return [Pooled(torch.stack([p.acts for p in per_lang]), torch.stack([p.peak for p in per_lang])) for per_lang in out]


def token_activations(lm, sae, layer: int, token_ids: list[list[int]], features: list[int],
                      outlier_threshold: float | None, tokens_per_batch: int = 2048) -> list[tuple[list[str], torch.Tensor]]:
    """Per passage, its tokens (rendered by bytes) and the activations of `features` on
    each ([T, len(features)], 0 where the token is not valid), the BOS-like token left out."""
    out: list = [None] * len(token_ids)
    unique = sorted({int(lm.bos_id)} | {i for ids in token_ids for i in ids})
    piece = dict(zip(unique, token_pieces(lm.tokenizer, unique)))   # one call: it reads the whole vocabulary
    with torch.inference_mode():
        for batch in batches(lm, token_ids, tokens_per_batch):
            resid = lm.residual(batch.ids, layer).float()
            valid = _valid(lm, batch, resid, outlier_threshold)
            acts = sae.encode(resid)[:, :, features].float() * valid[..., None]     # [B, T, k]
            for b, r in enumerate(batch.rows):
                T = len(token_ids[r]) + 1
                texts = token_texts([piece[i] for i in batch.ids[b, :T].tolist()])
                out[r] = (texts[1:], acts[b, 1:T])
    return out


def canonical_tokens(tokenizer, ids: torch.Tensor) -> torch.Tensor:
    """ids with every token replaced by the smallest id of the same text without
    surrounding spaces (" apt" and "apt" are the same token for the same-token test)."""
    unique = [int(i) for i in torch.unique(ids) if i >= 0]
    texts = [p.strip() for p in token_pieces(tokenizer, unique)]
    first: dict[bytes, int] = {}
    lut = torch.arange(max(unique, default=0) + 1, dtype=ids.dtype)       # id -> canonical id
    for i, t in zip(unique, texts):
        lut[i] = first.setdefault(t, i)
    return torch.where(ids >= 0, lut[ids.clamp_min(0)], ids)
