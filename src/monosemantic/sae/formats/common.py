"""What every reader of another library's SAE returns, and the hook-name parsing
they share (the layer is checked against the store on import)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..base import SAE


@dataclass
class Imported:
    sae: SAE                  # ours, raw units, float32, eval mode
    source: dict              # {"format", "path", "architecture" (theirs), "conversions": [...]}
    metadata: dict = field(default_factory=dict)  # what the source says: model_name, hook_name, hook_layer, ...


_PRE = re.compile(r"blocks\.(\d+)\.hook_resid_pre$")
_POST = re.compile(r"(?:^|\.)(?:blocks|layers|h)\.(\d+)(?:\.hook_resid_post)?$|resid_post_layer_(\d+)$")


def hook_layer(hook_name: str | None) -> int | None:
    """The block whose output a hook reads (our `layer`): TransformerLens
    `blocks.L.hook_resid_post` and HF/sparsify `layers.L` / `model.layers.L` read
    block L; `blocks.L.hook_resid_pre` reads block L-1's output. None if unknown."""
    if not isinstance(hook_name, str):
        return None
    if m := _PRE.search(hook_name):
        return int(m.group(1)) - 1
    if m := _POST.search(hook_name):
        return int(m.group(1) or m.group(2))
    return None
