"""The pure core of the geometry analysis: decoder-cosine neighbourhoods within and
across members, one 2-D UMAP of every member's decoder directions, clusters of the
map and their labels. Plain arrays in, plain arrays out; I/O is geometry.py's."""

from __future__ import annotations

import math
from collections import Counter
from typing import NamedTuple

import numpy as np
import torch

from ..features.directions import nearest_directions, unit_rows


class Neighbours(NamedTuple):
    ids: np.ndarray      # [n, k] int32, nearest first
    cos: np.ndarray      # [n, k] float32


def neighbourhoods(directions: dict[str, torch.Tensor], k: int = 10, k_cross: int = 5) -> dict[str, dict[str, Neighbours]]:
    """member -> {member or other member -> its k nearest directions there}: a
    feature's neighbours in its own dictionary (itself excluded) and in each other one."""
    out: dict[str, dict[str, Neighbours]] = {}
    for name, d in directions.items():
        out[name] = {}
        for other, e in directions.items():
            ids, cos = nearest_directions(d, e, k if other == name else k_cross, exclude_self=other == name)
            out[name][other] = Neighbours(ids.numpy().astype(np.int32), cos.numpy().astype(np.float32))
    return out


def neighbour_summary(nb: dict[str, dict[str, Neighbours]], alive: dict[str, np.ndarray]) -> dict:
    """Over the alive features of each member: the median cosine to its nearest
    neighbour in its own dictionary and in each other one, and the fraction found
    again elsewhere (nearest cosine ≥ 0.9, ≥ 0.7)."""
    out = {}
    for name, by_other in nb.items():
        rows = {}
        for other, n in by_other.items():
            best = n.cos[alive[name], 0] if n.cos.shape[1] else np.zeros(0)
            rows[other] = {"median_nearest_cos": float(np.median(best)) if best.size else None,
                           "found_at_0.9": float(np.mean(best >= 0.9)) if best.size else None,
                           "found_at_0.7": float(np.mean(best >= 0.7)) if best.size else None}
        out[name] = rows
    return out


def umap_2d(directions: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0) -> np.ndarray:
    """[n, 2] UMAP of the rows under the cosine metric (umap-learn; seeded, so one thread)."""
    import warnings

    import umap

    with warnings.catch_warnings():   # "n_jobs overridden to 1 by setting random_state": wanted, for reproducible maps
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=min(n_neighbors, len(directions) - 1),
                            min_dist=min_dist, random_state=seed, low_memory=True)
        return reducer.fit_transform(np.ascontiguousarray(directions, dtype=np.float32)).astype(np.float32)


def kmeans_clusters(xy: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Cluster id of each map point: k-means on the 2-D map, so clusters are regions
    a reader sees (ids ordered by size, largest first)."""
    from sklearn.cluster import KMeans

    n_clusters = max(1, min(n_clusters, len(xy)))
    raw = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(xy)
    order = np.argsort(-np.bincount(raw, minlength=n_clusters), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(n_clusters)
    return rank[raw].astype(np.int32)


class ClusterLabel(NamedTuple):
    cluster: int
    size: int
    x: float
    y: float
    tokens: list[tuple[str, float]]   # (token, fraction of the cluster's features with it among their top tokens)
    members: dict[str, int]           # features per member
    label: str


def _norm(token: str) -> str:
    return token.strip().lower()


def label_clusters(assign: np.ndarray, xy: np.ndarray, point_tokens: list[list[str]], point_member: list[str],
                   n_tokens: int = 3, min_fraction: float = 0.1, min_lift: float = 2.0) -> list[ClusterLabel]:
    """Each cluster named by the top tokens its features share: tokens at least
    `min_lift` times as common among the cluster's features as over the whole map (so
    "," shared by every region names none), ranked by the fraction of the cluster's
    features having the token among their top tokens times its rarity (tf-idf)."""
    sets = [{_norm(t) for t in toks if _norm(t)} for toks in point_tokens]
    overall = Counter(t for s in sets for t in s)
    n = max(len(sets), 1)
    out = []
    for c in range(int(assign.max()) + 1 if len(assign) else 0):
        idx = np.nonzero(assign == c)[0]
        counts = Counter(t for i in idx for t in sets[i])
        scored = sorted(((frac * math.log(n / overall[t]), t, frac) for t, cnt in counts.items()
                         if (frac := cnt / len(idx)) >= min_fraction and frac >= min_lift * overall[t] / n), reverse=True)
        tokens = [(t, round(frac, 3)) for _, t, frac in scored[:n_tokens]]
        label = ", ".join(f'"{t}"' for t, _ in tokens) if tokens else "(no shared top token)"
        centre = xy[idx].mean(0)
        out.append(ClusterLabel(c, len(idx), float(centre[0]), float(centre[1]), tokens,
                                dict(Counter(point_member[i] for i in idx)), label))
    return out


def as_unit_numpy(directions: torch.Tensor) -> np.ndarray:
    return unit_rows(directions).numpy()
