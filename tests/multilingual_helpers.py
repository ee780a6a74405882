"""A multilingual result from the real pipeline on the tiny Llama: aligned passages in
three languages and scripts, a random ReLU SAE, analyse() and write_result() (used by
the analysis, web and report tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from monosemantic.analysis.multilingual_config import MultilingualConfig
from monosemantic.analysis.multilingual_result import analyse
from monosemantic.analysis.multilingual_run import OUT, write_result
from monosemantic.data.parallel import Passage
from monosemantic.sae import SAEConfig, make_sae

WORDS = {"en-US": "the river number", "fr-FR": "la rivière numéro", "ja-JP": "川の番号"}


def parallel_passages(n: int) -> list[Passage]:
    return [Passage("test", f"p{i // 7}.html", f"s{i % 7}", i, {lang: f"{w} {i} " * (1 + i % 4) for lang, w in WORDS.items()})
            for i in range(n)]


def tiny_relu(lm, n_latents: int = 32, seed: int = 0):
    torch.manual_seed(seed)
    sae = make_sae(SAEConfig("relu", d_in=lm.d_model, n_latents=n_latents))
    with torch.no_grad():
        sae.W_dec.copy_(torch.randn(n_latents, lm.d_model) / lm.d_model ** 0.5)
        sae.W_enc.copy_(sae.W_dec.T * 3.0)
    return sae


def write_tiny_result(lm, run_dir: Path, layer: int = 2) -> dict:
    """RUN/analysis/multilingual/ for a tiny SAE and a second, larger one as its 'family'."""
    cfg = MultilingualConfig(languages=tuple(WORDS), passages=30, top=3, min_fires=1)
    result = analyse(lm, [tiny_relu(lm), tiny_relu(lm, 64, seed=1)], [run_dir.name, "bigger"], layer, parallel_passages(40), cfg,
                     run_dir / OUT / "partial")
    write_result(run_dir / OUT, result)
    return result
