"""What splitting and completeness share on a real family: a sample of store rows,
every member's sparse codes on it (cached per member, so a killed analysis resumes
with the members already encoded), and rows rendered as text snippets."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .. import atomic
from ..errors import StoreError
from ..run import Run
from ..token_text import token_texts
from .codes import sparse_codes


def sample_rows(n_store: int, n: int, seed: int = 0) -> np.ndarray:
    """A uniform sample of n of the store's rows (all of them when n ≥ n_store), sorted."""
    if n >= n_store:
        return np.arange(n_store, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n_store, n, replace=False)).astype(np.int64)


def _digest(index: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(index, dtype=np.int64).tobytes()).hexdigest()[:16]


def member_codes(run: Run, store, index: np.ndarray, cache_dir: Path, progress: bool = True) -> sp.csr_matrix:
    """The member's codes on store rows `index`, from cache_dir/<member>-<digest>.npz
    when an earlier call encoded the same rows with the same SAE."""
    sae_file = run.sae_dir / "sae_weights.safetensors"
    stamp = f"{sae_file.stat().st_size}-{sae_file.stat().st_mtime_ns}"
    path = Path(cache_dir) / f"{run.dir.name}-{_digest(index)}-{hashlib.sha1(stamp.encode()).hexdigest()[:8]}.npz"
    if path.is_file():
        try:
            return sp.load_npz(path).tocsr()          # allow_pickle is off in load_npz
        except (ValueError, OSError, KeyError):
            path.unlink(missing_ok=True)              # damaged: encode again
    sae = run.sae()
    if sae.W_dec.shape[1] != store.d:
        raise StoreError(f"{run.dir.name}'s SAE reads width {sae.W_dec.shape[1]}, the store has width {store.d}")
    codes = sparse_codes(sae, store, index, desc=f"encode {run.dir.name}", progress=progress)
    buf = io.BytesIO()
    sp.save_npz(buf, codes)
    atomic.write_bytes(path, buf.getvalue())
    return codes


def store_rows(store) -> np.ndarray:
    """[N, 4] int64 (context id, position, document id, position in document) of every row."""
    if any(r is None for r in store.rows):
        raise StoreError(f"{store.path} is a plain .npy: its rows cannot be traced to tokens; harvest a store "
                         "with `monosemantic harvest RUN`")
    return np.concatenate([np.asarray(r, dtype=np.int64) for r in store.rows])


def vocab_bytes_of(run: Run) -> list[bytes]:
    """Raw bytes of every token id of the run's model (its tokenizer only, no weights)."""
    from ..models.tokenizer import load_tokenizer
    from ..token_text import vocab_bytes

    spec = run.model_spec
    if spec is None:
        raise StoreError(f"{run.dir} does not record its model: harvest its store with `monosemantic harvest`")
    return vocab_bytes(load_tokenizer(spec))


def snippet(contexts: np.ndarray, vocab: list[bytes], context: int, position: int, window: int = 10) -> list[str]:
    """[left, token, right] text around one token of a packed context, decoded by bytes."""
    lo, hi = max(position - window, 1), min(position + 4, contexts.shape[1])
    texts = token_texts([vocab[int(t)] if 0 <= int(t) < len(vocab) else b"" for t in contexts[context, lo:hi]])
    at = position - lo
    return ["".join(texts[:at]), "".join(texts[at : at + 1]), "".join(texts[at + 1 :])]
