"""Completeness logic on synthetic data with a known answer (issue 16, "Done when"):
a planted concept feature is detected and an absent one is not; the sigmoid fit
recovers a known midpoint from synthetic points."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from monosemantic.analysis.concept_presence import (
    CompletenessConfig, best_f1, concept_best_feature, fit_sigmoid, sigmoid,
)


def test_best_f1_by_hand():
    s = best_f1([1.0, 2.0, 3.0], [0.5, 2.5])        # t=1: tp 3, fp 1 -> 6/7; t=2: 4/6; t=3: 2/4
    assert s.f1 == pytest.approx(6 / 7) and s.threshold == 1.0 and s.recall == 1.0 and s.precision == 0.75
    weighted = best_f1([1.0, 2.0, 3.0], [0.5, 2.5], neg_weight=10)   # t=3: fp 0 -> 0.5 beats 6/16
    assert weighted.f1 == pytest.approx(0.5) and weighted.threshold == 3.0
    assert best_f1([0.0, 0.0], [1.0]).f1 == 0.0


def _world(seed=0, n_features=40, n_rows=6000, mention_rows=60):
    """Codes of a background sample and of a concept's mention rows: feature 20 fires on
    every mention and on 0.2 % of other rows; features 0-9 fire at random on 20 % of rows."""
    rng = np.random.default_rng(seed)

    def noise(n):
        dense = np.where(rng.random((n, n_features)) < 0.2, rng.uniform(0.1, 3.0, (n, n_features)), 0.0)
        dense[:, 10:] = 0
        return dense

    bg = noise(n_rows)
    bg[rng.random(n_rows) < 0.002, 20] = 2.5
    mentions = noise(mention_rows)
    return bg, mentions


def test_a_planted_concept_feature_is_detected_and_an_absent_one_is_not():
    bg, mentions = _world()
    cfg = CompletenessConfig()
    mention_of_row = np.arange(len(mentions)) // 2          # two-token mentions
    planted = mentions.copy()
    planted[1::2, 20] = 2.5                                   # the feature fires on the last token of each mention
    got = concept_best_feature(sp.csr_matrix(planted), mention_of_row, 30, sp.csr_matrix(bg),
                               np.zeros(len(bg), bool), neg_weight=1.0, cfg=cfg)
    assert got.feature == 20 and got.score.f1 >= cfg.min_f1 and got.score.recall == 1.0
    absent = concept_best_feature(sp.csr_matrix(mentions), mention_of_row, 30, sp.csr_matrix(bg),
                                  np.zeros(len(bg), bool), neg_weight=1.0, cfg=cfg)
    assert absent.score.f1 < cfg.min_f1                     # only features that fire everywhere


def test_negatives_are_weighted_to_the_whole_store():
    """The same planted feature, judged against a 1 % background sample standing for 100x
    the tokens, is specific only while its stray firing stays rare."""
    bg, mentions = _world()
    planted = mentions.copy()
    planted[:, 20] = 2.5
    rows = np.arange(len(mentions))
    ok = concept_best_feature(sp.csr_matrix(planted), rows, len(rows), sp.csr_matrix(bg), np.zeros(len(bg), bool), 1.0)
    swamped = concept_best_feature(sp.csr_matrix(planted), rows, len(rows), sp.csr_matrix(bg), np.zeros(len(bg), bool), 100.0)
    assert ok.feature == 20 and ok.score.f1 > 0.8 and swamped.score.f1 < 0.5


def test_background_rows_that_are_mentions_are_not_negatives():
    bg, mentions = _world()
    planted = mentions.copy()
    planted[:, 20] = 2.5
    bg[:300, 20] = 2.5                                        # the sample holds 300 of the concept's own mentions
    rows = np.arange(len(mentions))
    as_negatives = concept_best_feature(sp.csr_matrix(planted), rows, len(rows), sp.csr_matrix(bg), np.zeros(len(bg), bool), 1.0)
    marked = np.zeros(len(bg), bool)
    marked[:300] = True
    excluded = concept_best_feature(sp.csr_matrix(planted), rows, len(rows), sp.csr_matrix(bg), marked, 1.0)
    assert as_negatives.score.f1 < 0.5 < excluded.score.f1


def test_sigmoid_fit_recovers_a_known_midpoint():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, 1500)                             # log10(frequency x alive)
    present = rng.random(1500) < sigmoid(x, 0.7, 0.4)        # 0/1 outcomes, as for concepts
    fit = fit_sigmoid(x, present)
    assert fit.midpoint == pytest.approx(0.7, abs=0.1) and fit.width == pytest.approx(0.4, abs=0.15)
    assert fit.midpoint_value == pytest.approx(10 ** fit.midpoint)
    exact = fit_sigmoid(np.linspace(-2, 2, 41), sigmoid(np.linspace(-2, 2, 41), -0.5, 0.3))
    assert exact.midpoint == pytest.approx(-0.5, abs=1e-4)
    with pytest.raises(ValueError, match="both present and absent"):
        fit_sigmoid(x, np.ones_like(x))
