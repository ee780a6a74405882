"""Units: anything with an activation per token that the offline scorers can take.

| kind | activation at a token with residual x and MLP neurons h | writes (for ablation) |
|---|---|---|
| `feature` | SAE latent f_i(x) | W_dec[i] |
| `neuron` | MLP neuron h_i of the same layer (input of down_proj) | the down_proj column i |
| `residual` | basis coordinate x·e_i − its mean | e_i |
| `pca` | x·v_i − mean, v_i the i-th principal direction of the explain-side activations | v_i |
| `random` | x·v − mean, v a seeded random unit direction | v |

Every unit's activation is `acts(x, h)`, and ablating it at a token means
x ← x − act·write (zero-ablation for features and neurons, mean-ablation along the
direction for the others). A direction's sign is chosen so its long tail is positive.

A unit *fires* where its activation is > 0 and >= its threshold: the (1 − max_density)
quantile of its explain-side activations. The same rule holds for
every kind, so a dense neuron is judged on its strongest ~2 % of tokens, as a sparse
feature is on all of its activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError

UNIT_KINDS = ("feature", "neuron", "residual", "pca", "random")
MAX_DENSITY = 0.02


@dataclass
class Units:
    kind: str
    ids: list[int]  # unit ids within the kind (latent index, neuron index, dimension, component, random seed row)
    writes: torch.Tensor  # [n, d] what ablating each unit removes, per unit of activation
    encoder: object = None  # the SAE (kind feature)
    directions: torch.Tensor | None = None  # [n, d] (direction kinds)
    offset: torch.Tensor | None = None  # [n] mean projection on the explain side (direction kinds)
    threshold: torch.Tensor | None = None  # [n] firing thresholds (set by fit_thresholds)
    reference: bool = False  # the plain path (full SAE encode), kept for the equality test and the benchmark

    def __len__(self) -> int:
        return len(self.ids)

    @torch.no_grad()
    def acts(self, resid: torch.Tensor, neurons: torch.Tensor | None) -> torch.Tensor:
        """[..., d], [..., d_mlp] -> [..., n] float32."""
        if self.kind == "feature":
            shape = resid.shape[:-1]
            flat = resid.reshape(-1, resid.shape[-1])
            # SAE.encode_latents: a per-latent encoder (relu) computes only these latents, equal to the
            # full encode to float rounding (25 of 4,096 columns: the pool's activations ~19x faster,
            # benchmarks/interpret.py); the others encode all and select
            latents = torch.tensor(self.ids, dtype=torch.long)
            subset = None if self.reference else getattr(self.encoder, "encode_latents", None)
            encode = (lambda x: subset(x, latents)) if subset else (lambda x: self.encoder.encode(x)[:, latents])
            out = torch.cat([encode(flat[i : i + 4096]).float() for i in range(0, max(len(flat), 1), 4096)])
            return out.reshape(*shape, len(self.ids))
        if self.kind == "neuron":
            return neurons[..., self.ids].float()
        return resid.float() @ self.directions.T - self.offset

    def fires(self, acts: torch.Tensor) -> torch.Tensor:
        return firing(acts, self.threshold)

    def subset(self, idx: list[int]) -> "Units":
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return Units(self.kind, [self.ids[i] for i in idx], self.writes[idx], self.encoder, pick(self.directions),
                     pick(self.offset), pick(self.threshold), self.reference)


def firing(acts, threshold):
    """Where a unit fires: above zero and at or above its threshold (>=, so a unit
    whose activation is one value on all its tokens keeps them all)."""
    return (acts > 0) & (acts >= threshold)


def _oriented(proj: torch.Tensor) -> torch.Tensor:
    """+1/−1 per column so the column's skewness is positive (its tail is what fires)."""
    c = proj - proj.mean(0)
    skew = (c**3).mean(0) / c.pow(2).mean(0).clamp(min=1e-12).pow(1.5)
    return torch.where(skew < 0, -1.0, 1.0)


def principal_directions(x: torch.Tensor) -> torch.Tensor:
    """[N, d] -> [d, d] principal directions, most variance first."""
    c = x.double() - x.double().mean(0)
    _, vecs = torch.linalg.eigh(c.T @ c / max(len(c) - 1, 1))
    return vecs.flip(1).T.float()


def random_directions(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, d, generator=g)
    return v / v.norm(dim=1, keepdim=True)


def make_units(kind: str, ids: list[int], explain_resid: torch.Tensor, sae=None, neuron_writes: torch.Tensor | None = None,
               seed: int = 0, reference: bool = False) -> Units:
    """Units of `kind` with the given ids; `explain_resid` [N, d] (valid explain-side
    tokens) fixes the directions' sign, mean and the principal directions."""
    d = explain_resid.shape[1]
    if kind == "feature":
        return Units(kind, ids, sae.W_dec.detach().float()[ids], encoder=sae, reference=reference)
    if kind == "neuron":
        return Units(kind, ids, neuron_writes[ids].float())
    if kind == "residual":
        basis = torch.eye(d)
    elif kind == "pca":
        basis = principal_directions(explain_resid)
    elif kind == "random":
        basis = random_directions(max(ids) + 1, d, seed)
    else:
        raise ConfigError(f"unknown unit kind {kind!r}: use {', '.join(UNIT_KINDS)}")
    v = basis[ids]
    proj = explain_resid.float() @ v.T  # [N, n]
    v = v * _oriented(proj)[:, None]
    offset = (explain_resid.float() @ v.T).mean(0)
    return Units(kind, ids, v, directions=v, offset=offset)


def fit_thresholds(units: Units, explain_acts: torch.Tensor, max_density: float = MAX_DENSITY) -> None:
    """explain_acts [N_tokens, n] on valid explain-side tokens."""
    q = torch.quantile(explain_acts.float(), 1 - max_density, dim=0) if len(explain_acts) else torch.zeros(len(units))
    units.threshold = q.clamp(min=0.0)


def sample_ids(candidates: list[int], n: int, seed: int) -> list[int]:
    """n of the candidates uniformly at random (all of them if fewer), sorted."""
    if n >= len(candidates):
        return sorted(candidates)
    return sorted(np.random.default_rng(seed).choice(candidates, n, replace=False).tolist())
