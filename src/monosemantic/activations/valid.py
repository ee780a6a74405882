"""The one rule for which token positions count: what the harvest stores (and the SAE
trains on), what the spliced eval replaces, and what the feature database records.

Excluded:
- the first `first_positions` positions of every context: position 0 holds the
  BOS-like token where the attention sink lands (norm ~100x the others), and position
  1, the first token after it, sees nothing but the sink: at layer 15 of SmolLM2 its
  residual is its own cluster (seven of the ten densest features of the main run were
  near-duplicates firing there, docs/activations.md);
- special tokens anywhere (`special_ids`: the BOS and the separator packed between
  documents; documents are tokenized with split_special_tokens, so no other special
  token occurs in a context);
- with `norms` and `threshold`, tokens whose residual norm exceeds the threshold
  (remaining sinks; the harvest fixes the threshold, OUTLIER_FACTOR x the median).
"""

from __future__ import annotations

from typing import Sequence

import torch

FIRST_POSITIONS = 2  # positions 0 (BOS) and 1 (the first token after it)


def special_token_ids(lm) -> list[int]:
    """The ids the rule excludes anywhere: the model's BOS-like token, its document
    separator and the tokenizer's other special tokens."""
    ids = {int(lm.bos_id), int(lm.sep_id)}
    ids.update(int(i) for i in getattr(lm.tokenizer, "all_special_ids", []) or [])
    return sorted(ids)


def valid_tokens(ids: torch.Tensor, special_ids: Sequence[int], first_positions: int = FIRST_POSITIONS,
                 norms: torch.Tensor | None = None, threshold: float | None = None) -> torch.Tensor:
    """ids [B, T] -> [B, T] bool, True where the token counts."""
    keep = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
    keep[:, :first_positions] = False
    if len(special_ids):
        keep &= ~torch.isin(ids, torch.as_tensor(list(special_ids), dtype=ids.dtype, device=ids.device))
    if norms is not None and threshold is not None:
        keep &= norms <= threshold
    return keep
