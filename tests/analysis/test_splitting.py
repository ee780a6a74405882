"""Splitting on synthetic dictionaries with a known answer (issue 16, "Done when"): a
small-SAE direction equal to the normalised sum of two large-SAE directions is found
as a split into exactly those two, and an SAE matched against itself is the identity."""

from __future__ import annotations

import numpy as np
import torch
from split_helpers import basis, rows_of, sae_with

from monosemantic.activations import open_store
from monosemantic.analysis.codes import sparse_codes, top_examples
from monosemantic.analysis.split_match import (
    SplitConfig, build_trees, children_counts, cosine_candidates, match_features, split_fraction, tree_size,
)


def _codes(sae, store, n):
    return sparse_codes(sae, store, np.arange(n), chunk=512, progress=False)


def test_planted_split_is_found(tmp_path):
    large = basis(12)                                   # 12 orthonormal directions
    merged = (large[0] + large[1]) / np.linalg.norm(large[0] + large[1])
    elsewhere = basis(21)[20]                           # orthogonal to every large direction
    small = np.vstack([merged, large[2:8], elsewhere])  # feature 0 = normalised sum of large 0 and 1
    np.save(tmp_path / "acts.npy", rows_of(large))
    store = open_store(tmp_path / "acts.npy")
    s, l = sae_with(small), sae_with(large)
    with torch.no_grad():
        s.b_enc[7] = 10.0                                # fires on every row: co-fires with all, points elsewhere
    cs, cl = _codes(s, store, 3000), _codes(l, store, 3000)
    m = match_features(cs, cl, s.W_dec, l.W_dec)
    assert m.parent[0] == 0 and m.parent[1] == 0                        # both halves found under the merged feature
    assert np.allclose(m.cosine[:2], 1 / np.sqrt(2), atol=1e-4)
    assert m.coactivation[0] == 1.0 and m.coactivation[1] == 1.0        # the merged feature fires wherever a half does
    assert list(m.parent[2:8]) == list(range(1, 7))                     # the others are one-to-one
    assert (m.parent[8:] == -1).all()                                   # directions the small SAE lacks: unmatched
    counts = children_counts(m, len(small))
    assert counts.tolist() == [2, 1, 1, 1, 1, 1, 1, 0]
    assert split_fraction(counts) == 1 / 8
    tree = build_trees([m], [len(small), len(large)])[0]
    assert sorted(c["id"] for c in tree["children"]) == [0, 1] and tree_size(tree) == 2


def test_cofiring_is_required_as_well_as_cosine(tmp_path):
    """Same direction is not enough: the parent must fire on most of the child's tokens."""
    large = basis(6)
    np.save(tmp_path / "acts.npy", rows_of(large, active=1))       # magnitudes uniform in [0.5, 2]
    store = open_store(tmp_path / "acts.npy")
    s, l = sae_with(large[:3]), sae_with(large)
    with torch.no_grad():
        s.b_enc[0] = -1.6                                          # parent 0 fires on the strongest ~27 % only
    m = match_features(_codes(s, store, 3000), _codes(l, store, 3000), s.W_dec, l.W_dec)
    assert np.isclose(m.cosine[0], 1.0, atol=1e-5) and m.parent[0] == -1
    assert m.parent[1] == 1 and m.parent[2] == 2 and (m.parent[3:] == -1).all()


def test_a_child_that_never_fires_is_not_judged(tmp_path):
    large = basis(6)
    np.save(tmp_path / "acts.npy", rows_of(large[1:], active=1))   # large 0 never occurs
    store = open_store(tmp_path / "acts.npy")
    s, l = sae_with(large[:3]), sae_with(large)
    m = match_features(_codes(s, store, 3000), _codes(l, store, 3000), s.W_dec, l.W_dec)
    assert m.fires[0] == 0 and m.parent[0] == -1 and m.parent[1] == 1


def test_an_sae_matched_against_itself_is_the_identity(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(48, 32)).astype(np.float32)   # 48 random (non-orthogonal) directions
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    np.save(tmp_path / "acts.npy", rows_of(w, n_rows=4000, active=3))
    store = open_store(tmp_path / "acts.npy")
    sae = sae_with(w, threshold=0.3)
    codes = _codes(sae, store, 4000)
    m = match_features(codes, codes, sae.W_dec, sae.W_dec)
    live = m.fires >= SplitConfig().min_fires
    assert live.sum() >= 40
    assert (m.parent[live] == np.arange(48)[live]).all()
    assert np.allclose(m.cosine[live], 1.0, atol=1e-5) and (m.coactivation[live] == 1.0).all()
    assert split_fraction(children_counts(m, 48), live) == 0.0


def test_cosine_candidates_chunked_equal_dense():
    rng = np.random.default_rng(0)
    p, c = rng.normal(size=(40, 8)), rng.normal(size=(25, 8))
    idx, cos = cosine_candidates(p, c, k=5, chunk=7)
    pu, cu = p / np.linalg.norm(p, axis=1, keepdims=True), c / np.linalg.norm(c, axis=1, keepdims=True)
    dense = cu @ pu.T
    assert (idx == np.argsort(-dense, axis=1)[:, :5]).all()
    assert np.allclose(cos, np.sort(dense, axis=1)[:, ::-1][:, :5], atol=1e-6)


def test_top_examples_are_the_strongest_rows():
    import scipy.sparse as sp

    codes = sp.csr_matrix(np.array([[0, 1.0], [3.0, 0], [2.0, 0.5], [0, 0]], dtype=np.float32))
    top = top_examples(codes, k=3)
    assert top.rows.tolist() == [[1, 2, -1], [0, 2, -1]]
    assert np.allclose(top.acts, [[3, 2, 0], [1, 0.5, 0]])


def test_candidate_cofiring_equals_the_dense_count():
    import scipy.sparse as sp

    from monosemantic.analysis.split_match import candidate_cofiring

    rng = np.random.default_rng(1)
    parent = sp.random(300, 20, density=0.2, random_state=2, format="csr", dtype=np.float32)
    child = sp.random(300, 35, density=0.15, random_state=3, format="csr", dtype=np.float32)
    cand = rng.integers(0, 20, size=(35, 4))
    dense = (parent.toarray() > 0).astype(int).T @ (child.toarray() > 0).astype(int)   # [20, 35]
    expected = np.take_along_axis(dense.T, cand, axis=1)
    assert (candidate_cofiring(parent, child, cand) == expected).all() and expected.sum() > 0
