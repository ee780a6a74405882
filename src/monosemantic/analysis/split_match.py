"""Feature splitting (Templeton et al. 2024, "Feature splitting"): a feature of a small
SAE whose region of activation space the larger SAEs cover with several features.

Matching, for a smaller SAE P (parents) and a larger one C (children), both encoded on
the same store rows:
- candidates: the `candidates` features of P whose decoder directions have the highest
  cosine with child j's;
- child j's parent is the candidate of highest cosine that passes both tests:
  cosine ≥ `min_cosine` and P(parent fires | j fires) ≥ `min_coactivation` on the shared
  rows, with j firing on at least `min_fires` of them; a child with no such candidate
  is unmatched (a direction the smaller SAE did not have).

Why these defaults: a parent that is the normalised sum of k orthogonal children has
cosine 1/√k with each (0.71 for two, 0.5 for four), and the children of a real split
share the parent's component, so their cosine is higher; the largest cosine of a
random 576-d direction with 32,768 others is ~0.2. A child's tokens are a subset of
its parent's, so the parent fires on most of them (1.0 for an exact split), while two
directions that merely point the same way need not fire together.

Each child has at most one parent, so parent -> children links form trees: a feature
of the smallest member, its children in the next member, theirs in the next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from .codes import unit_rows


@dataclass(frozen=True)
class SplitConfig:
    min_cosine: float = 0.5          # decoder cosine of parent and child (1/√4: up to four orthogonal children)
    min_coactivation: float = 0.5    # P(parent fires | child fires) on the shared rows
    min_fires: int = 5               # a child firing on fewer shared rows is not judged (unmatched)
    candidates: int = 16             # parents considered per child, by decoder cosine


class Match(NamedTuple):
    parent: np.ndarray        # [n_child] int64: the parent in the smaller SAE, -1 when unmatched
    cosine: np.ndarray        # [n_child] float32: decoder cosine with that parent (best candidate's when unmatched)
    coactivation: np.ndarray  # [n_child] float32: P(parent fires | child fires) (0 when unmatched)
    fires: np.ndarray         # [n_child] int64: shared rows on which the child fires


def cosine_candidates(w_parent, w_child, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each child row, the k parent rows of highest decoder cosine, best first:
    (index [n_child, k] int64, cosine [n_child, k] float32). Chunked over children,
    so memory is chunk x n_parent, not n_child x n_parent."""
    p, c = torch.from_numpy(unit_rows(w_parent)), torch.from_numpy(unit_rows(w_child))
    k = min(k, len(p))
    index = np.empty((len(c), k), dtype=np.int64)
    cosine = np.empty((len(c), k), dtype=np.float32)
    for start in range(0, len(c), chunk):
        top = torch.topk(c[start : start + chunk] @ p.T, k, dim=1)        # [b, n_parent] -> [b, k], sorted
        index[start : start + chunk] = top.indices.numpy()
        cosine[start : start + chunk] = top.values.numpy()
    return index, cosine


def candidate_cofiring(parent_codes: sp.spmatrix, child_codes: sp.spmatrix, candidates: np.ndarray) -> np.ndarray:
    """[n_child, k]: on how many shared rows child j and its candidate parent
    candidates[j, k] both fire. Each nonzero of the child codes is looked up in the
    parent's sorted (row, feature) keys: time and memory grow with the nonzeros, never
    with the number of co-firing pairs (benchmarks/splitting_cofiring.py: on the main
    family's 8,192 / 32,768 members, 60k rows, 3.0 s against 5.0 s for the whole
    co-firing matrix, counts equal; that matrix grows as L0², 125M pairs at L0 ~50)."""
    if parent_codes.shape[0] != child_codes.shape[0]:
        raise ValueError(f"codes of {parent_codes.shape[0]} and {child_codes.shape[0]} rows: encode the same rows")
    pa = sp.csr_matrix(parent_codes)
    pa.sort_indices()
    n_parent = np.int64(pa.shape[1])
    rows = np.repeat(np.arange(pa.shape[0], dtype=np.int64), np.diff(pa.indptr))
    keys = (rows * n_parent + pa.indices)[pa.data > 0]                   # ascending: rows in order, indices sorted
    child = sp.coo_matrix(child_codes)
    fired = child.data > 0
    r, j = child.row[fired].astype(np.int64), child.col[fired].astype(np.int64)
    both = np.zeros(candidates.shape, dtype=np.int64)
    for k in range(candidates.shape[1]):
        q = r * n_parent + candidates[j, k]
        at = np.searchsorted(keys, q).clip(0, max(len(keys) - 1, 0))
        hit = keys[at] == q if len(keys) else np.zeros(len(q), dtype=bool)
        both[:, k] = np.bincount(j[hit], minlength=candidates.shape[0])
    return both


def match_features(parent_codes, child_codes, w_parent, w_child, cfg: SplitConfig = SplitConfig()) -> Match:
    """Each child's parent (module docstring). codes: [rows, n] on the same rows."""
    index, cosine = cosine_candidates(w_parent, w_child, cfg.candidates)
    fires = np.asarray((sp.csc_matrix(child_codes) > 0).sum(axis=0)).ravel().astype(np.int64)   # [n_child]
    n_child = index.shape[0]
    both = candidate_cofiring(parent_codes, child_codes, index)                                    # [n_child, k]
    coact = both / np.maximum(fires, 1)[:, None]                                                   # [n_child, k]
    ok = (cosine >= cfg.min_cosine) & (coact >= cfg.min_coactivation) & (fires >= cfg.min_fires)[:, None]
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)        # candidates are by cosine: first passing = best
    rows = np.arange(n_child)
    pick = np.maximum(first, 0)
    parent = np.where(first >= 0, index[rows, pick], -1)
    return Match(parent.astype(np.int64), cosine[rows, pick].astype(np.float32),
                 np.where(first >= 0, coact[rows, pick], 0.0).astype(np.float32), fires)


def children_of(match: Match, n_parent: int) -> list[list[int]]:
    """Per parent, its children (ids in the larger SAE), by decreasing cosine."""
    out: list[list[int]] = [[] for _ in range(n_parent)]
    for j in np.argsort(-match.cosine, kind="stable"):
        if match.parent[j] >= 0:
            out[int(match.parent[j])].append(int(j))
    return out


def children_counts(match: Match, n_parent: int) -> np.ndarray:
    """[n_parent] int64: how many children each parent has."""
    parents = match.parent[match.parent >= 0]
    return np.bincount(parents, minlength=n_parent).astype(np.int64)


def split_fraction(counts: np.ndarray, alive: np.ndarray | None = None) -> float:
    """Fraction of (alive) parents with ≥ 2 children: the ones that split."""
    counts = counts if alive is None else counts[alive]
    return float((counts >= 2).mean()) if len(counts) else 0.0


def build_trees(matches: list[Match], sizes: list[int]) -> list[dict]:
    """One tree per feature of the smallest member: {"member": 0, "id": i, "children":
    [...]} nested down the members; each child node carries its cosine and
    co-activation with its parent. matches[m] links member m (parents) to m + 1."""
    kids = [children_of(m, sizes[level]) for level, m in enumerate(matches)]

    def node(level: int, fid: int, link: tuple[float, float] | None) -> dict:
        out = {"member": level, "id": fid}
        if link is not None:
            out["cosine"], out["coactivation"] = round(link[0], 4), round(link[1], 4)
        if level < len(kids):
            m = matches[level]
            out["children"] = [node(level + 1, j, (float(m.cosine[j]), float(m.coactivation[j]))) for j in kids[level][fid]]
        return out

    return [node(0, i, None) for i in range(sizes[0])]


def tree_size(tree: dict) -> int:
    """Number of nodes below the root, at every depth."""
    return sum(1 + tree_size(c) for c in tree.get("children", []))
