"""SAELens folders (`cfg.json` + `sae_weights.safetensors`) that SAELens wrote, every
architecture it saves for inference, converted to ours in raw units:

  standard -> relu       topk -> topk        jumprelu -> jumprelu (SAELens saves its
  gated    -> gated                          batchtopk and matryoshka SAEs as jumprelu)

`apply_b_dec_to_input` that differs from ours moves into b_enc (io.sae_from_tensors).
`rescale_acts_by_decoder_norm` (topk) is folded exactly: SAELens encodes
pre·‖W_dec,i‖ and decodes f/‖W_dec,i‖, so W_enc[:, i]·‖W_dec,i‖, b_enc·‖W_dec,i‖ and
W_dec,i/‖W_dec,i‖ give the same activations and outputs, with unit decoder rows.
`normalize_activations="expected_average_only_in"` means SAELens feeds it c·x with
c = √d / E‖x‖ (its own estimate, not in the folder): folded like our store's scale,
W_enc·c, W_dec/c, b_dec/c, with c given by the caller (`--norm-scale`, or the store's
own √d / E‖x‖). Per-token normalisations (constant_norm_rescale, layer_norm) and
covariance whitening are not linear in x and cannot be folded: refused."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import CheckpointError
from ..io import CFG, WEIGHTS, read_safetensors, sae_from_tensors
from ..registry import ALL_ARCHITECTURES, config_for
from .common import Imported, hook_layer

NEEDS_SCALE = "expected_average_only_in"


def _fields(arch: str) -> set[str]:
    from dataclasses import fields

    return {f.name for f in fields(ALL_ARCHITECTURES[arch].config_class)}


def _bad(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}")


def read_saelens(directory: Path, norm_scale: float | None = None) -> Imported:
    directory = Path(directory)
    path = directory / CFG
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _bad(path, f"unreadable SAELens config ({e})") from e
    theirs = cfg.get("architecture", "standard")
    imports = {name: ours for ours, cls in ALL_ARCHITECTURES.items() for name in cls.saelens_imports}
    arch = imports.get(theirs)
    if arch is None:
        raise _bad(path, f"SAELens architecture {theirs!r} is not an SAE this toolkit can run "
                         f"(supported: {', '.join(imports)})")
    try:
        d, n = int(cfg["d_in"]), int(cfg["d_sae"])
        k = int(cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k") or 32)
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"missing or bad d_in/d_sae/k ({e})") from e
    tensors = read_safetensors(directory / WEIGHTS)
    t = {name: v.float() for name, v in tensors.items()}
    conversions = []

    if cfg.get("rescale_acts_by_decoder_norm") and arch == "topk":
        norms = t["W_dec"].norm(dim=1).clamp_min(1e-12)                   # [n]
        t["W_enc"], t["b_enc"], t["W_dec"] = t["W_enc"] * norms, t["b_enc"] * norms, t["W_dec"] / norms[:, None]
        conversions.append("rescale_acts_by_decoder_norm folded into W_enc, b_enc, W_dec")
    elif cfg.get("rescale_acts_by_decoder_norm"):
        raise _bad(path, f"rescale_acts_by_decoder_norm on a {theirs!r} SAE is not something SAELens saves")

    norm = cfg.get("normalize_activations") or "none"
    if norm == NEEDS_SCALE:
        if norm_scale is None:
            raise _bad(path, "normalize_activations='expected_average_only_in': give the scale SAELens fed it "
                             "(--norm-scale), or import it into a run whose store supplies √d/E‖x‖")
        c = float(norm_scale)
        t["W_enc"], t["W_dec"], t["b_dec"] = t["W_enc"] * c, t["W_dec"] / c, t["b_dec"] / c
        conversions.append(f"expected_average_only_in: input scale {c:.6g} folded into the weights")
    elif norm != "none":
        raise _bad(path, f"normalize_activations={norm!r} rescales every token by its own norm or statistics; "
                         "that is not linear in x, so it cannot be folded into these weights")

    if "threshold" in t:
        # ReLU(pre)·[pre > θ] (SAELens) equals our pre·[pre > θ] for θ > 0; θ ≤ 0 acts as
        # θ = 0, kept a hair above it for our log-parametrised threshold.
        t["threshold"] = t["threshold"].clamp_min(1e-12)
    config = config_for({"architecture": arch, "d_in": d, "n_latents": n} | ({"k": k} if "k" in _fields(arch) else {}))
    sae = sae_from_tensors(config, t, bool(cfg.get("apply_b_dec_to_input", True)), directory / WEIGHTS)
    meta = dict(cfg.get("metadata") or {})
    for key in ("model_name", "hook_name", "hook_layer", "context_size", "prepend_bos", "dataset_path"):
        if key in cfg and key not in meta:
            meta[key] = cfg[key]
    if hook_layer(meta.get("hook_name")) is not None:
        meta["hook_layer"] = hook_layer(meta.get("hook_name"))           # resid_pre of L+1 is our layer L
    source = {"format": "saelens", "path": str(directory.resolve()), "architecture": theirs,
              "conversions": conversions}
    return Imported(sae, source, meta)


def with_norm_scale(cfg_dir: Path) -> bool:
    """Whether this SAELens folder needs the input scale of expected_average_only_in."""
    try:
        return json.loads((Path(cfg_dir) / CFG).read_text()).get("normalize_activations") == NEEDS_SCALE
    except (OSError, ValueError):
        return False

