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
import math
import os
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .. import atomic
from ..activations.harvest import Tokens
from ..activations.valid import outlier_threshold, valid_tokens
from ..activations.split import is_heldout
from ..errors import ConfigError, StoreError
from ..run_config import data_root, record_stage
from .directions import decoder_neighbours, logit_effects
from .schema import DB_NAME, create_schema, f16_blob, i32_blob, ids_values_blob
from .streaming import EMPTY, FeatureStream, StreamConfig

DEFAULT_TOKENS = 60_000  # ~1-2 minutes of forward on 2 cores; enough for top-20 of most live features
CHECKPOINT = "features.build.pt"
PARTIAL = DB_NAME + ".partial"


@dataclass(frozen=True)
class FeatureDBConfig:
    n_tokens: int = DEFAULT_TOKENS  # tokens streamed (whole contexts, held-out ones first)
    neurons: bool = False  # also summarise the MLP neurons of the same layer
    stream: StreamConfig = field(default_factory=StreamConfig)
    logit_k: int = 10  # promoted / suppressed tokens kept per feature
    neighbour_k: int = 10  # nearest decoder directions kept per feature
    batch_contexts: int = 8  # contexts per forward (1k tokens at ctx_len 128)

    def to_dict(self) -> dict:
        return {**asdict(self), "stream": self.stream.to_dict()}


@dataclass(frozen=True)
class BuildResult:
    path: Path
    n_tokens: int  # tokens that counted (position 0, BOS and outliers excluded)
    n_features: int
    n_neurons: int
    stream_seconds: float  # model + SAE + summaries
    write_seconds: float  # logit effects, neighbours, database
    bytes: int
    reused: bool = False  # an up-to-date database was already there

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / max(self.stream_seconds, 1e-9)

    @property
    def bytes_per_feature(self) -> float:
        return self.bytes / max(self.n_features + self.n_neurons, 1)


# --- inputs -----------------------------------------------------------------------
def load_run_tokens(run_dir: Path) -> Tokens:
    """RUN/tokens as packed by the data stage."""
    directory = run_dir / "tokens"
    try:
        from ..data import load_tokens  # type: ignore[attr-defined]
    except ImportError:
        load_tokens = None
    if load_tokens is not None:
        t = load_tokens(directory)
        return Tokens(np.asarray(t.contexts), np.asarray(t.doc_ids), np.asarray(t.doc_pos))
    if not (directory / "contexts.npy").is_file():
        raise StoreError(f"{directory} has no packed tokens: run `monosemantic harvest {run_dir}` first")
    load = lambda name: np.load(directory / name, mmap_mode="r")  # noqa: E731
    return Tokens(load("contexts.npy"), load("doc_ids.npy"), load("doc_pos.npy"))


def select_contexts(n_contexts: int, ctx_len: int, n_tokens: int) -> tuple[np.ndarray, int]:
    """Held-out contexts first, then training ones if there are too few; returns the
    context ids and how many of them are held out."""
    ids = np.arange(n_contexts)
    held = is_heldout(ids)
    need = max(1, math.ceil(n_tokens / max(ctx_len - 1, 1)))
    order = np.concatenate([ids[held], ids[~held]])[:need]
    return order, int(min(held.sum(), need))


def mlp_neuron_module(block: nn.Module) -> nn.Module:
    """The module whose input is the MLP's post-nonlinearity activations:
    down_proj (Llama, Gemma: act_fn(gate) * up) or c_proj (GPT-2)."""
    mlp = getattr(block, "mlp", None)
    for name in ("down_proj", "c_proj", "fc2", "dense_4h_to_h"):
        module = getattr(mlp, name, None)
        if isinstance(module, nn.Module):
            return module
    raise ConfigError(f"cannot find the MLP output projection of {type(block).__name__}: --neurons is not supported for this model")


def neuron_directions(module: nn.Module) -> torch.Tensor:
    """[d_mlp, d]: what each neuron writes into the residual stream."""
    weight = module.weight.detach().float()
    if type(module).__name__ == "Conv1D":  # GPT-2 stores [in, out]
        return weight
    return weight.T  # nn.Linear stores [out, in]


def _sae_digest(sae) -> str:
    h = hashlib.sha1()
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        t = getattr(sae, name, None)
        if t is not None:
            h.update(t.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _tokens_digest(contexts: np.ndarray, order: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(contexts[np.sort(order)]).tobytes()).hexdigest()[:16]


# --- streaming ------------------------------------------------------------------------
class _Streamer:
    def __init__(self, lm, sae, layer: int, tokens: Tokens, order: np.ndarray, cfg: FeatureDBConfig, threshold: float | None):
        self.lm, self.sae, self.layer, self.tokens, self.order, self.cfg = lm, sae, layer, tokens, order, cfg
        self.T = int(tokens.contexts.shape[1])
        self.threshold = threshold
        vocab = max(int(lm.vocab_size), int(np.max(tokens.contexts[np.sort(order)])) + 1)
        n_latents = int(sae.W_dec.shape[0])
        self.streams = {"feature": FeatureStream(n_latents, self.T, vocab, cfg.stream)}
        self.neuron_module = mlp_neuron_module(lm.blocks[layer]) if cfg.neurons else None
        if cfg.neurons:
            d_mlp = neuron_directions(self.neuron_module).shape[0]
            self.streams["neuron"] = FeatureStream(d_mlp, self.T, vocab, cfg.stream)

    @property
    def n_batches(self) -> int:
        return math.ceil(len(self.order) / self.cfg.batch_contexts)

    def batch_ids(self, i: int) -> np.ndarray:
        return self.order[i * self.cfg.batch_contexts : (i + 1) * self.cfg.batch_contexts]

    @torch.no_grad()
    def forward(self, ctx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Residual [B, T, d] float32, neuron activations [B, T, d_mlp] or None, ids [B, T]."""
        ids = torch.from_numpy(np.asarray(self.tokens.contexts[ctx]).astype(np.int64))
        captured: list[torch.Tensor] = []
        handle = None
        if self.neuron_module is not None:
            handle = self.neuron_module.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        try:
            resid = self.lm.residual(ids, self.layer).float()
        finally:
            if handle is not None:
                handle.remove()
        return resid, (captured[0].float() if captured else None), ids

    def outlier_threshold(self) -> float:
        resid, _, ids = self.forward(self.batch_ids(0))
        return outlier_threshold(resid.norm(dim=-1), ids, exclude_ids=(self.lm.bos_id,))

    @torch.no_grad()
    def step(self, i: int) -> None:
        ctx = self.batch_ids(i)
        resid, neurons, ids = self.forward(ctx)
        # the attention sink and outliers are never feature examples
        valid = valid_tokens(ids, exclude_ids=(self.lm.bos_id,), norms=resid.norm(dim=-1), outlier_threshold=self.threshold)
        B, T, d = resid.shape
        # encoding the few excluded tokens too and zeroing them is cheaper than gathering
        # the valid rows and scattering them into a fresh [B, T, n] tensor
        resid = torch.where(valid[..., None], resid, torch.zeros(()))  # outliers never reach the SAE
        acts = self.sae.encode(resid.view(B * T, d)).float().view(B, T, -1)  # [B, T, n_latents] ≥ 0
        acts.mul_(valid[..., None])
        ctx_ids = torch.from_numpy(ctx.astype(np.int64))
        self.streams["feature"].update(acts, valid, ctx_ids, ids, i)
        if neurons is not None:
            # neurons summarised by their positive part (fires = activation > 0)
            neuron_acts = torch.where(valid[..., None], neurons.clamp(min=0), torch.zeros(()))
            self.streams["neuron"].update(neuron_acts, valid, ctx_ids, ids, i)


# --- writing -------------------------------------------------------------------------
def _vocab_rows(tokenizer, vocab: int):
    decoded = tokenizer.batch_decode([[i] for i in range(min(vocab, len(tokenizer)))])
    return list(enumerate(decoded))


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
            conn.executemany("INSERT INTO vocab VALUES (?,?)", _vocab_rows(lm.tokenizer, lm.vocab_size))
            conn.executemany("INSERT INTO meta VALUES (?,?)", [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()])
            conn.execute("INSERT INTO meta VALUES ('complete', '1')")
    finally:
        conn.close()
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


# --- the stage -------------------------------------------------------------------------
def _existing_settings(db_path: Path) -> dict | None:
    if not db_path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    if meta.get("complete") != "1":
        return None
    return json.loads(meta.get("build_key", "null"))


def build_feature_db(
    run_dir: str | Path,
    lm=None,
    sae=None,
    n_tokens: int = DEFAULT_TOKENS,
    neurons: bool = False,
    progress: bool = True,
    top_k: int | None = None,
    force: bool = False,
    tokens: Tokens | None = None,
    layer: int | None = None,
    cfg: FeatureDBConfig | None = None,
    checkpoint_seconds: float = 60.0,
) -> BuildResult:
    """Build RUN/features.db from RUN/tokens, RUN/sae and the run's model (each can be
    passed instead); run again after an interruption to resume. Returns a summary."""
    from ..models import load_model

    run_dir = Path(run_dir)
    if cfg is None:
        stream = StreamConfig() if top_k is None else StreamConfig(top_k=top_k)
        cfg = FeatureDBConfig(n_tokens=n_tokens, neurons=neurons, stream=stream)
    if cfg.n_tokens <= 0 or cfg.stream.top_k <= 0:
        raise ConfigError("--tokens and --top-k must be positive")
    root = data_root(run_dir)
    manifest_path = root / "activations" / "manifest.json"
    manifest = atomic.read_json(manifest_path) if manifest_path.is_file() else {}
    if lm is None:
        if "model" not in manifest:
            raise StoreError(f"{run_dir} has no finished activation store naming the model (activations/manifest.json): "
                             f"run `monosemantic harvest {run_dir}` and `monosemantic train {run_dir}` first "
                             "(from Python: pass lm=)")
        lm = load_model(manifest.get("model_spec", manifest["model"]))
    if sae is None:
        from ..sae import load_sae

        if not (run_dir / "sae").is_dir():
            raise StoreError(f"{run_dir}/sae does not exist: train the SAE first (`monosemantic train {run_dir}`)")
        sae = load_sae(run_dir / "sae")
    layer = layer if layer is not None else manifest.get("layer", lm.default_layer)
    lm.check_layer(layer)
    if int(sae.W_dec.shape[1]) != lm.d_model:
        raise ConfigError(f"the SAE has width {sae.W_dec.shape[1]} but {lm.name} has d_model {lm.d_model}")
    tokens = tokens if tokens is not None else load_run_tokens(root)
    n_ctx, T = tokens.contexts.shape
    order, n_heldout = select_contexts(n_ctx, T, cfg.n_tokens)

    settings = {"tokens": cfg.n_tokens, "neurons": cfg.neurons, "top_k": cfg.stream.top_k}
    run_dir.mkdir(parents=True, exist_ok=True)
    record_stage(run_dir, "features", settings, replace=force)
    build_key = {"cfg": cfg.to_dict(), "sae": _sae_digest(sae), "tokens": _tokens_digest(tokens.contexts, order),
                 "model": lm.name, "layer": layer}
    db_path, partial, ckpt_path = run_dir / DB_NAME, run_dir / PARTIAL, run_dir / CHECKPOINT
    if force:
        for p in (partial, ckpt_path):
            p.unlink(missing_ok=True)
    elif _existing_settings(db_path) == json.loads(json.dumps(build_key)):
        return BuildResult(db_path, -1, int(sae.W_dec.shape[0]), 0, 0.0, 0.0, db_path.stat().st_size, reused=True)
    partial.unlink(missing_ok=True)  # a partial database is never resumed: it is rewritten from the checkpoint

    if hasattr(sae, "eval"):
        sae.eval()
    streamer = _Streamer(lm, sae, layer, tokens, order, cfg, manifest.get("outlier_threshold"))
    state = torch.load(ckpt_path, weights_only=False) if ckpt_path.is_file() else None
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
    if n_heldout < len(order) and progress and start_batch == 0:
        print(f"features: only {n_heldout} held-out contexts; adding {len(order) - n_heldout} training contexts "
              f"to reach {cfg.n_tokens:,} tokens", file=sys.stderr)

    def checkpoint(next_batch: int) -> None:
        atomic.write_with(ckpt_path, lambda p: torch.save({
            "build_key": json.loads(json.dumps(build_key)), "next_batch": next_batch, "stream_seconds": stream_seconds,
            "threshold": streamer.threshold, "streams": {k: s.state_dict() for k, s in streamer.streams.items()},
        }, p))

    last_checkpoint = time.monotonic()
    with tqdm(total=streamer.n_batches, initial=start_batch, unit="batch", desc=f"features layer {layer}", disable=not progress) as bar:
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
