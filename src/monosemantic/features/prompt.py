"""The strongest features on a prompt: run the model and the SAE on it (the web app's
prompt inspector). Kept out of FeatureDB, which only reads the database: the caller
owns the model, the SAE and the layer (a `Run` resolves them)."""

from __future__ import annotations

import torch

from ..activations.valid import excluded_ids, valid_tokens
from .db import FeatureDB
from .records import PromptFeatures


@torch.no_grad()
def top_for_prompt(db: FeatureDB, lm, sae, layer: int, prompt: str, k: int = 10, per_token: int = 5, features=()) -> PromptFeatures:
    """The prompt with the BOS-like token prepended (as in the build); positions the
    valid-token rule drops (the attention sink) are never scored. `features`: also
    their activation at every position (the inspector's selected feature)."""
    ids = [lm.bos_id] + list(lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    ids_t = torch.tensor([ids])                                                   # [1, T]
    resid = lm.residual(ids_t, layer)[0].float()                                  # [T, d]
    acts = sae.encode(resid).float()                                              # [T, n]
    acts *= valid_tokens(ids_t, exclude_ids=excluded_ids(lm))[0, :, None]
    mx, pos = acts.max(0)
    order = torch.argsort(mx, descending=True)[:k]
    top = [(int(f), float(mx[f]), int(pos[f])) for f in order if mx[f] > 0]
    vals, idx = torch.topk(acts, min(per_token, acts.shape[1]), dim=1)
    rows = [[(int(i), float(v)) for v, i in zip(vr, ir) if v > 0] for vr, ir in zip(vals, idx)]
    selected = {int(f): acts[:, int(f)].tolist() for f in features}
    return PromptFeatures(db.decode(ids), top, rows, selected)
