"""A tiny ReLU SAE (until tests need the real sae/ package) and small token sets,
imported by the features and report tests (and by the killed child process)."""

from __future__ import annotations

import numpy as np
import torch

from monosemantic.activations import Tokens


class TinySAE(torch.nn.Module):
    """ReLU SAE with random weights in raw units: encode(x) = relu((x - b_dec) W_enc + b_enc)."""

    def __init__(self, d: int, n: int, seed: int = 0, scale: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W_dec = torch.nn.Parameter(torch.randn(n, d, generator=g) / d**0.5)
        self.W_enc = torch.nn.Parameter(self.W_dec.detach().T.clone() * scale)
        self.b_enc = torch.nn.Parameter(-0.3 * torch.rand(n, generator=g))
        self.b_dec = torch.nn.Parameter(torch.zeros(d))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec + self.b_dec


def make_tokens(n_ctx: int, ctx_len: int, bos_id: int, seed: int = 0, vocab: int = 2000) -> Tokens:
    rng = np.random.default_rng(seed)
    contexts = rng.integers(100, vocab, size=(n_ctx, ctx_len)).astype(np.int32)
    contexts[:, 0] = bos_id
    doc_ids = np.repeat(np.arange(n_ctx, dtype=np.int32)[:, None], ctx_len, 1)
    doc_pos = np.tile(np.arange(ctx_len, dtype=np.int32), (n_ctx, 1))
    return Tokens(contexts, doc_ids, doc_pos)




# real text in other scripts, whose characters the tokenizer splits across tokens
MULTILINGUAL = ["Привет, мир! Как дела у тебя сегодня? Москва и Санкт-Петербург.", "日本語のテキストと中文的句子，东京和北京。",
                "Tiếng Việt có dấu: người Việt Nam được học ở Hà Nội.", "¶ 3. Abschnitt ¶ 4. Die Straße führt nach Köln."]


def multilingual_tokens(tokenizer, n_ctx: int, ctx_len: int, bos_id: int) -> Tokens:
    """make_tokens, with the first contexts holding MULTILINGUAL (each repeated to fill)."""
    tokens = make_tokens(n_ctx, ctx_len, bos_id)
    for c, text in enumerate(MULTILINGUAL):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        tokens.contexts[c, 1:] = (ids * ctx_len)[: ctx_len - 1]
    return tokens
