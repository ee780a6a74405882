"""The one AUROC: exact against sklearn, and the same number for every caller."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from monosemantic.auroc import auroc, auroc_columns
from monosemantic.autointerp.scorers import embedding
from monosemantic.features import image_probe
from monosemantic.steering import catalogue


def test_matches_sklearn_with_ties_and_columns():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 5, size=(37, 6)).astype(float)   # many ties
    neg = rng.integers(0, 4, size=(23, 6)).astype(float)
    got = auroc_columns(pos, neg)
    for c in range(6):
        labels = np.r_[np.ones(37), np.zeros(23)]
        assert got[c] == pytest.approx(roc_auc_score(labels, np.r_[pos[:, c], neg[:, c]]), abs=1e-15)


def test_every_caller_gets_the_same_bits():
    rng = np.random.default_rng(1)
    pos = torch.from_numpy(rng.random((20, 50)).astype(np.float32))
    neg = torch.from_numpy(rng.random((30, 50)).astype(np.float32))
    neg[:, :5] = 0
    pos[:, :5] = 0                                           # silent features
    cols = catalogue.auroc(pos, neg)
    assert cols[:5].tolist() == [0.5] * 5
    for c in range(50):
        one = embedding.auroc(pos[:, c].numpy(), neg[:, c].numpy())
        assert one == float(cols[c]) == image_probe.auroc(pos[:, c], neg[:, c])


def test_refuses_empty_sides():
    with pytest.raises(ValueError):
        auroc([], [1.0])
