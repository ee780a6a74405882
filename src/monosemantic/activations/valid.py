"""The one rule for which token positions carry an activation the SAE learns from,
reports on and is evaluated on. Harvest (what goes into the store), the feature
database (which tokens can be examples) and the spliced eval (where the
reconstruction is put in) all call `valid_tokens`, so they cannot drift apart.

Why (DESIGN.md): every context starts with a BOS-like token on which the attention
sink lands (norm ~25,000 at layer 15 of the embedded model, ~170 for typical tokens);
it and any other BOS are dropped, and so is any remaining token above the outlier
threshold (OUTLIER_FACTOR x the median norm of the first batch, fixed before any work
so that a resumed stage applies the same cut).

Position 1 and the document separator are dropped too (`excluded_ids`): the token
right after the sink sees nothing but the sink and itself, and at layer 15 its
residual forms its own cluster; kept, 7 of the main run's 10 densest features were
near-duplicates (decoder cosines 0.89-0.98) firing there, mostly on the
`<|im_start|><|endoftext|>` separator (docs/activations.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

OUTLIER_FACTOR = 10.0
SKIP_POSITIONS = 2       # leading positions never valid: 0 holds the BOS-like sink, 1 sees only the sink


def excluded_ids(lm) -> tuple[int, ...]:
    """The ids never valid anywhere: the model's BOS-like token, the separator packed
    between documents, and the tokenizer's other special tokens (documents are
    tokenized with split_special_tokens, so inside a context these are ours)."""
    ids = {int(lm.bos_id), int(lm.sep_id)}
    ids.update(int(i) for i in getattr(lm.tokenizer, "all_special_ids", None) or [])
    return tuple(sorted(ids))


def valid_tokens(
    ids: Tensor,                               # [B, T] token ids
    *,
    exclude_ids: Sequence[int],                # special tokens never valid anywhere (the BOS)
    skip_positions: int = SKIP_POSITIONS,      # leading positions never valid
    norms: Tensor | None = None,               # [B, T] residual norms, with outlier_threshold
    outlier_threshold: float | None = None,
) -> Tensor:
    """[B, T] bool: True where a token counts."""
    valid = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
    valid[:, :skip_positions] = False
    for token in exclude_ids:
        valid &= ids != token
    if outlier_threshold is not None:
        if norms is None:
            raise ValueError("outlier_threshold needs the residual norms")
        valid &= norms <= outlier_threshold
    return valid


def outlier_threshold(norms: Tensor, ids: Tensor, *, exclude_ids: Sequence[int], skip_positions: int = SKIP_POSITIONS) -> float:
    """OUTLIER_FACTOR x the median norm of the tokens that are otherwise valid."""
    keep = valid_tokens(ids, exclude_ids=exclude_ids, skip_positions=skip_positions)
    return float(OUTLIER_FACTOR * norms[keep].median())
