"""Writing a complete `features.db` from the streamed summaries (schema.py), and
reading back the build key of an existing one."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import torch

from ..token_text import token_texts, vocab_bytes
from .config import FeatureDBConfig
from .directions import decoder_neighbours, logit_effects
from .schema import connect, create_schema, f16_blob, i32_blob, ids_values_blob
from .streaming import FeatureStream


def _vocab_rows(tokenizer, vocab: int):
    pieces = vocab_bytes(tokenizer, min(vocab, len(tokenizer)))
    return [(i, token_texts([b])[0], b) for i, b in enumerate(pieces)]


def _example_rows(kind: str, stream: FeatureStream, contexts: np.ndarray):
    cfg, T = stream.cfg, stream.T
    W, before = cfg.window, cfg.window_before

    def window(fid, section, interval, rank, example_id, activation, win, lo=None, hi=None):
        ctx, pos = divmod(int(example_id), T)
        start = pos - before
        a, b = max(start, 0), min(start + W, T)
        tokens = np.asarray(contexts[ctx, a:b])
        acts = win[a - start : b - start]
        return (kind, fid, section, interval, rank, ctx, pos, float(activation), lo, hi, a, i32_blob(tokens), f16_blob(acts))

    top_val, top_id, top_win = stream.top_val.numpy(), stream.top_id.numpy(), stream.top_win.numpy()
    res_key, res_val, res_id, res_win = stream.res_key.numpy(), stream.res_val.numpy(), stream.res_id.numpy(), stream.res_win.numpy()
    lo, hi = (x.numpy() for x in stream.interval_bounds())
    neg_ctx = stream.neg_ctx.numpy()
    zeros = np.zeros(W, np.float16)
    for f in range(stream.n):
        for j in np.nonzero(top_val[f] > 0)[0]:
            yield window(f, "top", -1, int(j), top_id[f, j], top_val[f, j], top_win[f, j])
        for q in range(res_key.shape[1]):
            slots = np.nonzero(res_key[f, q] >= 0)[0]
            slots = slots[np.argsort(-res_val[f, q, slots], kind="stable")]
            for rank, s in enumerate(slots):
                yield window(f, "interval", q, rank, res_id[f, q, s], res_val[f, q, s], res_win[f, q, s], float(lo[f, q]), float(hi[f, q]))
        for rank, c in enumerate(neg_ctx[f][neg_ctx[f] >= 0]):
            a, b = 1, min(1 + W, T)
            yield (kind, f, "negative", -1, rank, int(c), a, 0.0, None, None, a, i32_blob(np.asarray(contexts[c, a:b])), f16_blob(zeros[: b - a]))


def _feature_rows(kind: str, stream: FeatureStream, directions: torch.Tensor, lm, cfg: FeatureDBConfig):
    logits = logit_effects(directions, lm.final_norm, lm.unembed, k=cfg.logit_k)
    nb_ids, nb_cos = decoder_neighbours(directions, k=cfg.neighbour_k)
    count = stream.count.numpy()
    mean = (stream.total / stream.count.clamp(min=1)).numpy()
    density = count / max(stream.n_tokens, 1)
    mx, hist = stream.max.numpy(), stream.hist.numpy()
    for f in range(stream.n):
        yield (
            kind, f, int(count[f]), float(density[f]), float(mx[f]), float(mean[f]),
            i32_blob(hist[f], compress=True),
            ids_values_blob(logits.top_ids[f].numpy(), logits.top_vals[f].numpy()),
            ids_values_blob(logits.bottom_ids[f].numpy(), logits.bottom_vals[f].numpy()),
            ids_values_blob(nb_ids[f].numpy(), nb_cos[f].numpy()),
        )


def _token_index_rows(kind: str, stream: FeatureStream):
    feat, val = stream.tok_feat.numpy(), stream.tok_val.numpy()
    for tok, rank in zip(*np.nonzero(feat >= 0)):
        yield (kind, int(tok), int(rank), int(feat[tok, rank]), float(val[tok, rank]))


def write_database(path: Path, meta: dict, kinds: dict, lm, contexts: np.ndarray, cfg: FeatureDBConfig) -> None:
    """Write a complete database at `path` (replaced if there). kinds: kind ->
    (FeatureStream, directions [n, d])."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # the file is renamed into place only when complete
        conn.execute("PRAGMA synchronous=OFF")
        with conn:
            create_schema(conn)
            for kind, (stream, directions) in kinds.items():
                conn.executemany("INSERT INTO features VALUES (?,?,?,?,?,?,?,?,?,?)", _feature_rows(kind, stream, directions, lm, cfg))
                conn.executemany("INSERT INTO examples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", _example_rows(kind, stream, contexts))
                conn.executemany("INSERT INTO token_index VALUES (?,?,?,?,?)", _token_index_rows(kind, stream))
            conn.executemany("INSERT INTO vocab VALUES (?,?,?)", _vocab_rows(lm.tokenizer, lm.vocab_size))
            conn.executemany("INSERT INTO meta VALUES (?,?)", [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()])
            conn.execute("INSERT INTO meta VALUES ('complete', '1')")
    finally:
        conn.close()
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def existing_build_key(db_path: Path) -> dict | None:
    if not db_path.is_file():
        return None
    try:
        conn = connect(db_path, readonly=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    if meta.get("complete") != "1":
        return None
    return json.loads(meta.get("build_key", "null"))
