"""Streaming held-out contexts through the model and the SAE (and optionally the MLP
neurons of the same layer) into bounded summaries (streaming.py), one batch at a time,
on the valid tokens only (activations/valid.py)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..activations.harvest import Tokens
from ..activations.split import is_heldout
from ..activations.valid import excluded_ids, outlier_threshold, valid_tokens
from ..errors import ConfigError
from .config import FeatureDBConfig
from .streaming import FeatureStream


def select_contexts(n_contexts: int, ctx_len: int, n_tokens: int | None) -> tuple[np.ndarray, int]:
    """Held-out contexts first, then training ones if there are too few; returns the
    context ids and how many of them are held out."""
    ids = np.arange(n_contexts)
    held = is_heldout(ids)
    need = n_contexts if n_tokens is None else max(1, math.ceil(n_tokens / max(ctx_len - 1, 1)))  # None: every context
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


class Streamer:
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
        return outlier_threshold(resid.norm(dim=-1), ids, exclude_ids=excluded_ids(self.lm))

    @torch.no_grad()
    def step(self, i: int) -> None:
        ctx = self.batch_ids(i)
        resid, neurons, ids = self.forward(ctx)
        # the attention sink, the token after it, separators and outliers are never feature examples
        valid = valid_tokens(ids, exclude_ids=excluded_ids(self.lm), norms=resid.norm(dim=-1), outlier_threshold=self.threshold)
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
