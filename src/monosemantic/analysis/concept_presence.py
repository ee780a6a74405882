"""Completeness (Templeton et al. 2024, "Feature completeness"): does a dictionary have
a feature for a concept, as a function of how often the concept occurs and how many
features the dictionary has alive?

A member has a feature specific to a concept when some feature separates the concept's
mentions from every other token with F1 ≥ `min_f1` (default 0.5) at its best
threshold. A mention counts as detected when the feature's largest activation over
the mention's tokens reaches the threshold; every other token is a negative, counted
from a uniform sample of the store and weighted up to the whole store (`neg_weight`).
F1 rather than AUROC because AUROC ignores how many other tokens a feature fires on:
a feature firing on all mentions and on 5 % of all text has AUROC ≈ 0.97 but is not
specific, while its F1 for a concept of frequency 1e-4 is ≈ 0.004. At F1 = 0.5 the
feature finds at least a third of the mentions, and fires elsewhere at most as often
as it fires on them.

The paper's plot: presence (0/1) against log10(frequency × alive features), with a
fitted sigmoid; its midpoint is the frequency × alive at which a concept has an even
chance of a feature (`fit_sigmoid`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import curve_fit


@dataclass(frozen=True)
class CompletenessConfig:
    min_f1: float = 0.5          # a feature at least this good on a concept makes it present
    min_mentions: int = 3        # concepts with fewer mentions in the store are not judged
    candidates: int = 16         # features tried per concept: the most active on its mentions, and the most often firing


class BestF1(NamedTuple):
    f1: float
    threshold: float     # activation at which it is reached (inf when the feature never fires on a mention)
    precision: float
    recall: float


def best_f1(pos: np.ndarray, neg: np.ndarray, neg_weight: float = 1.0) -> BestF1:
    """The best F1 of `activation ≥ t` over every threshold t, for positives `pos` [M]
    and negatives `neg` [N] (each negative standing for `neg_weight` tokens)."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.sort(np.asarray(neg, dtype=np.float64))
    t = np.unique(pos[pos > 0])                                          # candidate thresholds, ascending
    if len(t) == 0:
        return BestF1(0.0, float("inf"), 0.0, 0.0)
    tp = len(pos) - np.searchsorted(np.sort(pos), t, side="left")       # positives ≥ t
    fp = neg_weight * (len(neg) - np.searchsorted(neg, t, side="left"))  # weighted negatives ≥ t
    f1 = 2 * tp / (2 * tp + fp + (len(pos) - tp))
    i = int(np.argmax(f1))
    return BestF1(float(f1[i]), float(t[i]), float(tp[i] / (tp[i] + fp[i])), float(tp[i] / len(pos)))


class ConceptResult(NamedTuple):
    feature: int          # the best feature (-1 when none ever fires on a mention)
    score: BestF1


def mention_maxima(codes: sp.csr_matrix, mention_of_row: np.ndarray, n_mentions: int, features: np.ndarray) -> np.ndarray:
    """[n_mentions, len(features)]: each mention's largest activation over its rows.
    codes: [R, n] of the mention rows; mention_of_row [R]: which mention a row belongs to."""
    dense = codes[:, features].toarray()                                 # [R, F]
    out = np.zeros((n_mentions, len(features)), dtype=np.float32)
    np.maximum.at(out, mention_of_row, dense)
    return out


def concept_best_feature(mention_codes: sp.csr_matrix, mention_of_row: np.ndarray, n_mentions: int,
                         background: sp.csr_matrix, background_is_mention: np.ndarray, neg_weight: float,
                         cfg: CompletenessConfig = CompletenessConfig()) -> ConceptResult:
    """The feature that best separates one concept's mentions from other tokens.
    mention_codes: [R, n] codes of the rows of its mentions; background: [S, n] codes of
    a uniform sample of rows (CSC is fastest: only the candidates' columns are read), background_is_mention [S] marking those that are its
    mentions (not negatives); neg_weight: store tokens each negative stands for."""
    fired = (mention_codes > 0).astype(np.float32)
    by_count = np.asarray(fired.sum(axis=0)).ravel()
    by_act = np.asarray(mention_codes.sum(axis=0)).ravel()
    live = np.nonzero(by_count)[0]
    if len(live) == 0:
        return ConceptResult(-1, BestF1(0.0, float("inf"), 0.0, 0.0))
    k = cfg.candidates
    pick = np.union1d(live[np.argsort(-by_count[live], kind="stable")[:k]], live[np.argsort(-by_act[live], kind="stable")[:k]])
    pos = mention_maxima(mention_codes, mention_of_row, n_mentions, pick)   # [M, F]
    # columns first: a CSC background gives them without touching the other features' nonzeros
    neg = sp.csr_matrix(background[:, pick])[~np.asarray(background_is_mention, dtype=bool)].tocsc()
    best = ConceptResult(-1, BestF1(0.0, float("inf"), 0.0, 0.0))
    for j, fid in enumerate(pick):
        col = neg.data[neg.indptr[j] : neg.indptr[j + 1]]                 # nonzero negatives only: zeros never reach t > 0
        score = best_f1(pos[:, j], col, neg_weight)
        if score.f1 > best.score.f1:
            best = ConceptResult(int(fid), score)
    return best


def sigmoid(x, midpoint, width):
    return 1.0 / (1.0 + np.exp(-(np.asarray(x, dtype=np.float64) - midpoint) / width))


class SigmoidFit(NamedTuple):
    midpoint: float       # log10(frequency x alive) at which presence is 1/2
    width: float          # log10 units from 1/2 to 1/(1 + e^-1) = 0.73
    n_points: int

    @property
    def midpoint_value(self) -> float:
        """The midpoint as frequency x alive features (not its log10)."""
        return float(10 ** self.midpoint)


def fit_sigmoid(log10_x: np.ndarray, present: np.ndarray) -> SigmoidFit:
    """Least-squares fit of presence (0/1 or fractions) to a logistic in log10 space
    (scipy.optimize.curve_fit), as the paper's completeness plot. Raises ValueError when
    the points cannot place a midpoint (all present or all absent)."""
    x, y = np.asarray(log10_x, dtype=np.float64), np.asarray(present, dtype=np.float64)
    if len(x) < 3 or y.min() == y.max():
        raise ValueError(f"{len(x)} points, presence from {y.min() if len(y) else '-'} to {y.max() if len(y) else '-'}: "
                         "a sigmoid needs both present and absent concepts")
    p0 = (float(np.median(x)), max(float(np.std(x)) / 2, 1e-2))
    lo, hi = float(x.min()) - 3, float(x.max()) + 3
    (mid, width), _ = curve_fit(sigmoid, x, y, p0=p0, bounds=([lo, 1e-3], [hi, 10.0]), maxfev=20000)
    return SigmoidFit(float(mid), float(width), len(x))
