"""The geometry analysis on synthetic dictionaries with a known answer: three
members whose decoder directions are planted around a few concept directions, each
feature's top tokens naming its concept. Neighbourhoods, the UMAP map, its clusters
and their labels must recover the planted structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monosemantic.analysis.map2d import kmeans_clusters, label_clusters, neighbour_summary, neighbourhoods, umap_2d
from monosemantic.features.directions import nearest_directions

D, CONCEPTS, SIZES = 48, 6, {"small": 60, "medium": 120, "large": 240}


def planted_family(seed: int = 0):
    """member -> (directions [n, D], concept of each feature [n], top tokens of each feature)."""
    g = np.random.default_rng(seed)
    centres = g.standard_normal((CONCEPTS, D))
    out = {}
    for name, n in SIZES.items():
        concept = np.arange(n) % CONCEPTS
        dirs = centres[concept] + 0.25 * g.standard_normal((n, D))        # tight cones around each concept
        dirs *= g.uniform(0.5, 2.0, (n, 1))                                 # norms must not matter (cosine)
        # "," is among the top tokens of 90 % of all features, whatever their concept: it must name no region
        tokens = [[f" concept{c}", f"filler{g.integers(1000)}"] + ([","] if g.random() < 0.9 else []) for c in concept]
        out[name] = (torch.tensor(dirs, dtype=torch.float32), concept, tokens)
    return out


def test_nearest_directions_of_a_dictionary_against_itself_is_the_identity():
    d = torch.randn(200, D)
    ids, cos = nearest_directions(d, d.clone() * 3.0, k=1)
    assert torch.equal(ids[:, 0], torch.arange(200))
    assert torch.allclose(cos[:, 0], torch.ones(200), atol=1e-5)
    ids, _ = nearest_directions(d, d, k=3, exclude_self=True)    # the database's neighbours: never itself
    assert not (ids == torch.arange(200)[:, None]).any()


def test_neighbourhoods_stay_within_the_planted_concept():
    fam = planted_family()
    nb = neighbourhoods({name: d for name, (d, _, _) in fam.items()}, k=5, k_cross=3)
    for name, (_, concept, _) in fam.items():
        for other, (_, other_concept, _) in fam.items():
            ids = nb[name][other].ids
            assert (other_concept[ids] == concept[:, None]).mean() > 0.98, (name, other)
    alive = {name: np.ones(len(c), bool) for name, (_, c, _) in fam.items()}
    summary = neighbour_summary(nb, alive)
    assert summary["small"]["large"]["found_at_0.7"] > 0.9       # every small feature has a close direction in the large one
    random_nb = neighbourhoods({"a": torch.randn(60, D), "b": torch.randn(240, D)}, k=5)
    assert neighbour_summary(random_nb, {"a": np.ones(60, bool), "b": np.ones(240, bool)})["a"]["b"]["found_at_0.7"] == 0


def test_one_umap_of_all_members_recovers_the_planted_clusters_and_names_them():
    fam = planted_family()
    units = torch.cat([d / d.norm(dim=1, keepdim=True) for d, _, _ in fam.values()]).numpy()
    concept = np.concatenate([c for _, c, _ in fam.values()])
    member = [name for name, (_, c, _) in fam.items() for _ in c]
    tokens = [t for _, _, toks in fam.values() for t in toks]
    xy = umap_2d(units, n_neighbors=15, seed=0)
    assert xy.shape == (len(units), 2) and np.isfinite(xy).all()
    assign = kmeans_clusters(xy, CONCEPTS, seed=0)
    # each map cluster is one concept (purity), and each concept one cluster
    purity = sum(np.bincount(concept[assign == c]).max() for c in range(CONCEPTS)) / len(concept)
    assert purity > 0.97
    assert len({int(np.bincount(assign[concept == k]).argmax()) for k in range(CONCEPTS)}) == CONCEPTS
    labels = label_clusters(assign, xy, tokens, member)
    assert [c.size for c in labels] == sorted((c.size for c in labels), reverse=True)
    for c in labels:
        majority = int(np.bincount(concept[assign == c.cluster]).argmax())
        assert c.tokens[0][0] == f"concept{majority}", c        # named by its concept's shared token ...
        assert all(t != "," for t, _ in c.tokens)                  # ... not by the token every cluster shares
        assert set(c.members) == set(SIZES)                         # all three members share each region


@pytest.mark.parametrize("n_clusters", [1, 500])
def test_kmeans_clusters_bounds(n_clusters):
    xy = np.random.default_rng(0).standard_normal((30, 2)).astype(np.float32)
    assign = kmeans_clusters(xy, n_clusters)
    assert assign.shape == (30,) and assign.min() == 0 and assign.max() < min(n_clusters, 30)
