"""Ablation sparsity (Gao et al. 2024, "Scaling and evaluating sparse autoencoders",
section 4.5): how concentrated a unit's effect on the next-token logits is.

At the unit's strongest held-out token, the unit is ablated (x <- x - act * write,
units.py) in a window of the text ending there, and the change of the logits at that
token is measured, less its median over the vocabulary: Δ. (‖Δ‖₁ / ‖Δ‖₂)² counts the
logits effectively affected (V·2/π for a Gaussian Δ, 1 for a single logit); the score
is 1 − that count / V, so higher is sparser (≈ 0.36 for a diffuse effect)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..units import Units


@dataclass(frozen=True)
class AblationConfig:
    window: int = 12  # tokens of context before and including the ablated one
    batch: int = 32


def effective_count(delta: torch.Tensor) -> torch.Tensor:
    """[..., V] -> [...]: (‖Δ‖₁/‖Δ‖₂)² of the change less its median (a shift of every
    logit changes no prediction; the median, unlike the mean, leaves one moved logit alone)."""
    d = delta - delta.median(-1, keepdim=True).values
    return d.abs().sum(-1).pow(2) / d.pow(2).sum(-1).clamp(min=1e-30)


@torch.no_grad()
def ablation_sparsity(lm, layer: int, units: Units, seqs: list[list[int]], which: list[int], cfg: AblationConfig,
                      neuron_module=None, reference: bool = False) -> list[dict]:
    """For each sequence i: ablate unit which[i] at its last token; returns
    {"sparsity", "k_eff", "act"} or {"status"} when the unit is silent there.

    Only the last token differs between the clean and the ablated forward, so the fast
    path runs the tokens before it once (keeping their keys and values) and then the
    last token twice, unembedding it alone: 14 positions instead of 26 for a 12-token
    window. reference: both forwards over the whole window, as written above."""
    from ..shortseq import cache_rows, groups, new_cache

    out: list[dict] = [{} for _ in seqs]
    V = lm.vocab_size
    for chunk, ids in groups(seqs, cfg.batch):
        w = torch.tensor([which[i] for i in chunk])
        captured: list[torch.Tensor] = []
        handle = neuron_module.register_forward_pre_hook(lambda _m, args: captured.append(args[0])) if neuron_module is not None else None
        acts_box: list[torch.Tensor] = []

        def ablate(hidden: torch.Tensor) -> torch.Tensor:
            h = hidden.float()
            neurons = captured[-1][:, -1].float() if captured else None
            a = units.acts(h[:, -1], neurons).gather(1, w[:, None])[:, 0]  # [B]
            acts_box.append(a)
            h = h.clone()
            h[:, -1] -= a[:, None] * units.writes[w]
            return h

        try:
            if reference:
                run = lambda: lm.logits(ids)[:, -1].float()  # noqa: E731  [B, V]
            else:
                prefix, rows, P = new_cache(lm), torch.arange(len(chunk)), ids.shape[1] - 1
                lm.logits(ids[:, :-1], cache=prefix, last_only=True)
                run = lambda: lm.logits(ids[:, -1:], cache=cache_rows(lm, prefix, rows, P), last_only=True)[:, -1].float()  # noqa: E731
            clean = run()
            captured.clear()
            with lm.patch_residual(layer, ablate):
                ablated = run()
        finally:
            if handle is not None:
                handle.remove()
        k_eff = effective_count(ablated - clean)
        for k, i in enumerate(chunk):
            act = float(acts_box[0][k])
            if act <= 0 or not torch.isfinite(k_eff[k]) or float((ablated[k] - clean[k]).abs().max()) == 0.0:
                out[i] = {"status": "silent at its top held-out token", "act": act}
            else:
                out[i] = {"sparsity": 1.0 - float(k_eff[k]) / V, "k_eff": float(k_eff[k]), "act": act}
    return out
