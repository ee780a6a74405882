"""What an SAE's cfg.json says about the activations it reads, in the keys SAELens
and its users read (`HookedSAETransformer.from_pretrained(cfg.metadata.model_name)`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..models.embedded import EMBEDDED_HUB_ID
from ..models.loading import EMBEDDED_ALIASES


def hub_id(model_spec: str | None, model_name: str | None = None) -> str | None:
    """The Hugging Face id of the model a store was harvested from, when it has one:
    the embedded model's source repository, or a spec that is itself a hub id (not
    a local path or a .gguf file). None otherwise."""
    for value in (model_spec, model_name):
        if not isinstance(value, str):
            continue
        if value.lower() in EMBEDDED_ALIASES:
            return EMBEDDED_HUB_ID
    spec = model_spec or ""
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not spec.endswith(".gguf") and not Path(spec).exists():
        return spec
    return None


def same_model(a: str, b: str) -> bool:
    """A hub id and a display name name the same model when the id's last part is
    the name ("HuggingFaceTB/SmolLM2-135M-Instruct" and "SmolLM2-135M-Instruct")."""
    return a.rsplit("/", 1)[-1].lower() == b.rsplit("/", 1)[-1].lower()


def _bos_id(root: Path | None) -> int | None:
    try:
        return int(json.loads((Path(root) / "tokens" / "tokens.json").read_text())["bos_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_metadata(store, root: Path | None = None) -> dict:
    """SAELens metadata for an SAE trained on `store` (an ActivationStore); `root` is
    the run directory holding its tokens/ (for the BOS id)."""
    m = store.manifest
    name = hub_id(m.get("model_spec"), store.model) or store.model
    meta = {"model_name": name, "hook_layer": store.layer,
            "hook_name": m.get("hook_name") or (f"blocks.{store.layer}.hook_resid_post" if store.layer is not None else None)}
    if store.model is not None and store.model != name:
        meta["model_display_name"] = store.model
    if m.get("ctx_len"):
        meta["context_size"] = int(m["ctx_len"])
    if m.get("format", "").startswith("monosemantic-activations"):
        # Every context starts with a BOS-like token (the attention sink); that
        # position and any other BOS are left out of training and evaluation.
        meta["prepend_bos"] = True
        bos = _bos_id(root)
        if bos is not None:
            meta["bos_token_id"] = bos
        if m.get("dropped"):
            meta["excluded_tokens"] = m["dropped"]
    return {k: v for k, v in meta.items() if v is not None}
