"""Attribution vs ablation of SAE features for one next-token target.

The residual at layer L is rewritten as x = x̂(f) + ε with the error ε held fixed, so
the rest of the model is a function of the features f only. For a target T (the
last position's logit of a token, or a logit difference):

    attribution_i = Σ_t f_t,i · ∂T/∂f_t,i          (one backward pass, all features)
    ablation_i    = T(f) − T(f with f_·,i := 0)      (one forward per feature, batched)

Both are "how much of T does feature i account for": attribution is the first-order
estimate of the ablation, so the two agree where the rest of the model is close to
linear in f_i. Position 0 (the attention sink) is held fixed in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError
from .interventions import check_compatible


@dataclass(frozen=True)
class Target:
    token: int                  # token id whose next-token logit is the target
    versus: int | None = None   # if set, the target is logit[token] − logit[versus]

    def of(self, logits: Tensor) -> Tensor:
        """[B, T, vocab] -> [B], at the last position."""
        last = logits[:, -1].float()
        value = last[:, self.token]
        return value - last[:, self.versus] if self.versus is not None else value


@dataclass
class FeatureEffect:
    feature: int
    activation: float    # summed over positions 1..T−1
    attribution: float
    ablation: float      # drop in the target when the feature is set to 0 (same sign as attribution)


@dataclass
class AttributionResult:
    target_value: float
    effects: list[FeatureEffect]       # every feature active on the prompt, by |attribution|
    by_attribution: list[FeatureEffect]
    by_ablation: list[FeatureEffect]
    pearson: float                     # over the union of the two top lists
    spearman: float
    pearson_all: float                 # over every ablated feature
    spearman_all: float
    n_compared: int


def token_id(tokenizer, text: str) -> int:
    """One token for `text`. Without a leading space, " text" is preferred when it is
    one token (the usual next token after a word); a number is taken as a token id."""
    if text == "":
        raise ConfigError("--target is empty: give a token such as ' Paris', or its id")
    if text.strip().isdigit() and text == text.strip():
        return int(text)
    candidates = [text] if text.startswith(" ") else [" " + text, text]
    for candidate in candidates:
        ids = tokenizer(candidate, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return int(ids[0])
    from ..token_text import segments_of, show_tokens

    pieces = [s.text for s in segments_of(show_tokens(tokenizer, tokenizer(text, add_special_tokens=False)["input_ids"]))]
    raise ConfigError(f"target {text!r} is not one token (it splits into {pieces}): give a single token or its id")


def _residual_and_features(lm, sae, layer: int, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    x = lm.residual(ids, layer)[0].float().clone()                          # [T, d]; clone leaves inference mode
    with torch.no_grad():
        f = sae.encode(x).float()                                           # [T, n] ≥ 0
        err = x - sae.decode(f)                                             # [T, d] SAE error, held fixed
    return x, f, err


def attribution_scores(lm, sae, layer: int, ids: Tensor, target: Target) -> tuple[float, Tensor, Tensor]:
    """-> (target value, f [T, n], attribution [n]) with one forward and one backward."""
    check_compatible(lm, sae, layer)
    ids = ids if ids.dim() == 2 else ids[None]
    x, f, err = _residual_and_features(lm, sae, layer, ids)
    f_var = f.clone().requires_grad_(True)                                  # [T, n]
    with torch.enable_grad():
        x_rebuilt = sae.decode(f_var) + err                                 # [T, d] == x, but a function of f

        def replace(hidden: Tensor) -> Tensor:
            return x_rebuilt[None].to(hidden.dtype)

        with lm.patch_residual(layer, replace):
            logits = lm.model(input_ids=ids.to(lm.device), use_cache=False).logits
        value = target.of(logits)[0]
        (grad,) = torch.autograd.grad(value, f_var)                         # [T, n]
    attr = (f * grad)[1:].sum(0)                                            # [n], position 0 excluded
    return float(value.detach()), f, attr.detach()


def ablation_scores(lm, sae, layer: int, ids: Tensor, target: Target, features: Tensor,
                    batch_size: int = 16, f: Tensor | None = None) -> tuple[float, Tensor]:
    """-> (target value, drop [k]): T(f) − T(f with f_i := 0 at positions 1..), error kept.
    Several ablations share one forward, one per batch row."""
    check_compatible(lm, sae, layer)
    ids = ids if ids.dim() == 2 else ids[None]
    if f is None:
        _, f, _ = _residual_and_features(lm, sae, layer, ids)
    base = float(target.of(lm.logits(ids))[0])
    drops = []
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]                        # [b]
        delta = -f[:, chunk].T[:, :, None] * sae.W_dec[chunk].float()[:, None, :]  # [b, T, d]
        delta[:, 0] = 0

        def ablate(hidden: Tensor, delta=delta) -> Tensor:
            return hidden + delta.to(hidden.dtype)

        with lm.patch_residual(layer, ablate):
            ablated = target.of(lm.logits(ids.expand(len(chunk), -1)))     # [b]
        drops.append(base - ablated)
    return base, torch.cat(drops) if drops else torch.zeros(0)


def _correlations(a: list[float], b: list[float]) -> tuple[float, float]:
    from scipy.stats import pearsonr, spearmanr

    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan, math.nan
    return float(pearsonr(a, b)[0]), float(spearmanr(a, b)[0])


def attribute(lm, sae, layer: int, ids: Tensor, target: Target, top: int = 20, max_ablations: int = 512,
              batch_size: int = 16) -> AttributionResult:
    """Attribution for every feature, ablation for the features active on the prompt
    (at most max_ablations, the largest |attribution| first), and their agreement."""
    if top < 1:
        raise ConfigError(f"--top must be >= 1, got {top}")
    value, f, attr = attribution_scores(lm, sae, layer, ids, target)
    active = torch.nonzero(f[1:].amax(0) > 0).flatten()                     # [k]
    active = active[torch.argsort(attr[active].abs(), descending=True)][:max_ablations]
    _, drops = ablation_scores(lm, sae, layer, ids, target, active, batch_size, f)
    acts = f[1:].sum(0)
    effects = [FeatureEffect(int(i), float(acts[i]), float(attr[i]), float(d)) for i, d in zip(active.tolist(), drops.tolist())]
    by_attr = sorted(effects, key=lambda e: -abs(e.attribution))[:top]
    by_abl = sorted(effects, key=lambda e: -abs(e.ablation))[:top]
    union = {e.feature: e for e in by_attr + by_abl}.values()
    p, s = _correlations([e.attribution for e in union], [e.ablation for e in union])
    p_all, s_all = _correlations([e.attribution for e in effects], [e.ablation for e in effects])
    return AttributionResult(value, effects, by_attr, by_abl, p, s, p_all, s_all, len(union))
