"""Synthetic activations with a known dictionary, and how much of it an SAE recovers.

A realistic case, not a toy: a few thousand unit directions in d dimensions, grouped
into correlated clusters (directions of a cluster share a centroid and tend to fire
together, like a concept and its variants), cluster frequencies on a power law (a few
common, a long tail of rare ones), positive heavy-tailed magnitudes, and Gaussian
noise. Rows are scaled so that E‖x‖ = √d, as the real store is.

Recovery (docs/training.md): for every true direction, the best cosine over the SAE's
decoder rows; reported as the mean and the fraction above 0.9. Dead and rare latents
are counted on held-out rows: dead = never fired, rare = fired on < 1e-4 of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

RARE_DENSITY = 1e-4


@dataclass(frozen=True)
class SyntheticConfig:
    d: int = 256                  # width of the activations
    n_true: int = 4096            # true directions ("a few thousand")
    cluster_size: int = 4         # directions per correlated cluster
    cluster_cosine: float = 0.3   # typical cosine between two directions of a cluster
    mean_active: float = 16.0     # expected true directions active per row
    member_prob: float = 0.5      # a firing cluster switches each member on with this probability (≥ 1 always)
    zipf_exponent: float = 1.0    # cluster frequency ∝ rank^-exponent
    noise: float = 0.05           # Gaussian noise per dimension, relative to a unit direction
    seed: int = 0


class Recovery(NamedTuple):
    mean_max_cosine: float        # mean over true directions of the best decoder cosine
    recovered_fraction: float     # true directions with best cosine > 0.9
    dead_fraction: float          # latents that never fired on the held-out rows
    rare_fraction: float          # latents firing on fewer than RARE_DENSITY of them (dead excluded)
    l0: float                     # mean active latents per held-out row


class SyntheticDictionary:
    """The ground truth (`directions` [n_true, d]) and a deterministic row stream."""

    def __init__(self, cfg: SyntheticConfig = SyntheticConfig()):
        self.cfg = cfg
        rng = np.random.default_rng([cfg.seed, 0])
        n_clusters = -(-cfg.n_true // cfg.cluster_size)
        centroids = _unit(rng.normal(size=(n_clusters, cfg.d)))
        # member = √c·centroid + √(1−c)·own direction: two members have cosine ≈ c.
        own = _unit(rng.normal(size=(n_clusters * cfg.cluster_size, cfg.d)))
        c = cfg.cluster_cosine
        dirs = np.sqrt(c) * np.repeat(centroids, cfg.cluster_size, axis=0) + np.sqrt(1 - c) * own
        self.directions = _unit(dirs)[: cfg.n_true].astype(np.float32)                     # [n_true, d]
        self.cluster_of = np.arange(cfg.n_true) // cfg.cluster_size                         # [n_true]
        weights = (1.0 + rng.permutation(n_clusters)) ** -cfg.zipf_exponent                 # power law, shuffled ranks
        per_cluster = 1 + cfg.member_prob * (cfg.cluster_size - 1)                          # expected members on
        self.cluster_prob = np.minimum(weights / weights.sum() * cfg.mean_active / per_cluster, 0.5)  # [n_clusters]
        self.scale = 1.0
        sample = self.rows(8192, stream=-1)
        self.scale = float(np.sqrt(cfg.d) / np.linalg.norm(sample, axis=1).mean())

    @property
    def feature_prob(self) -> np.ndarray:
        """[n_true] probability that each true direction is active in a row."""
        p_member = (self.cfg.member_prob * (self.cfg.cluster_size - 1) + 1) / self.cfg.cluster_size
        return self.cluster_prob[self.cluster_of] * p_member

    def rows(self, n: int, stream: int = 0) -> np.ndarray:
        """n rows, float32 [n, d], scaled (E‖x‖ = √d); the same for the same `stream`."""
        cfg, size = self.cfg, self.cfg.cluster_size
        rng = np.random.default_rng([cfg.seed, 1, stream + 2])
        row, cluster = np.nonzero(rng.random((n, len(self.cluster_prob))) < self.cluster_prob)   # firing (row, cluster) pairs
        members = cluster[:, None] * size + np.arange(size)                                     # [pairs, size]
        on = rng.random(members.shape) < cfg.member_prob
        on[~on.any(1), 0] = True                       # a firing cluster has at least one member on
        on &= members < cfg.n_true
        feat = members[on]                                                                      # [active]
        rows = np.repeat(row, on.sum(1))                                                        # [active]
        magnitude = rng.lognormal(0.0, 0.5, size=feat.shape).astype(np.float32)
        x = cfg.noise * rng.standard_normal((n, cfg.d)).astype(np.float32)                      # [n, d]
        np.add.at(x, rows, magnitude[:, None] * self.directions[feat])
        return (x * self.scale).astype(np.float32)

    def batches(self, batch_size: int, heldout: bool = False):
        """A callable stream for the trainer: batch k is the same wherever the stream
        starts (resume); held-out batches come from another stream."""
        def stream(start: int):
            k = start
            while True:
                yield torch.from_numpy(self.rows(batch_size, stream=(1 << 20) + k if heldout else k))
                k += 1
        return stream


@torch.no_grad()
def recovery(sae, truth: SyntheticDictionary, heldout: torch.Tensor, chunk: int = 4096) -> Recovery:
    """How much of the true dictionary `sae` (in the units of `heldout`) recovers."""
    w = torch.nn.functional.normalize(sae.W_dec.detach().float(), dim=1)                  # [n, d]
    t = torch.nn.functional.normalize(torch.from_numpy(truth.directions), dim=1)          # [n_true, d]
    best = (t @ w.T).max(dim=1).values                                                    # [n_true]
    counts = torch.zeros(w.shape[0], dtype=torch.long)
    active = 0
    was_training = sae.training
    sae.eval()
    for part in heldout.split(chunk):
        fired = sae.encode(part) > 0                                                      # [b, n]
        counts += fired.sum(0)
        active += int(fired.sum())
    sae.train(was_training)
    n_rows = heldout.shape[0]
    dead = counts == 0
    rare = ~dead & (counts < RARE_DENSITY * n_rows)
    return Recovery(float(best.mean()), float((best > 0.9).float().mean()), float(dead.float().mean()),
                    float(rare.float().mean()), active / n_rows)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)
