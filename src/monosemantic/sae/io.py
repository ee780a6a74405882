"""Save and load an SAE as a SAELens-readable directory (docs/sae_format.md):

    <dir>/sae_weights.safetensors   W_enc [d, n], W_dec [n, d], b_enc [n], b_dec [d] (+ threshold [n])
    <dir>/cfg.json                  SAELens's keys + our own under "monosemantic"

Weights are saved in RAW activation units. The trainer feeds s·x (s = cfg.norm_scale);
folding s in keeps every feature activation unchanged:
    pre = (s·x − b_dec) @ W_enc + b_enc = (x − b_dec/s) @ (s·W_enc) + b_enc
    x̂_raw = x̂/s = f @ (W_dec/s) + b_dec/s
so W_enc' = s·W_enc, W_dec' = W_dec/s, b_dec' = b_dec/s, b_enc' = b_enc, thresholds
unchanged (they compare pre-activations). Without the b_dec subtraction (relu,
jumprelu) the same substitution holds."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..atomic import write_json, write_with
from ..errors import CheckpointError, ConfigError
from .base import SAE, SAEConfig
from .registry import ALL_ARCHITECTURES, make_sae

WEIGHTS = "sae_weights.safetensors"
CFG = "cfg.json"
FORMAT_VERSION = 1


def _folded_tensors(sae: SAE) -> dict[str, torch.Tensor]:
    s = float(sae.cfg.norm_scale)
    with torch.no_grad():
        t = {
            "W_enc": sae.W_enc.float() * s,
            "W_dec": sae.W_dec.float() / s,
            "b_enc": sae.b_enc.float(),
            "b_dec": sae.b_dec.float() / s,
        }
        threshold = getattr(sae, "threshold", None)
        if threshold is not None:
            t["threshold"] = (threshold.float() * torch.ones_like(t["b_enc"]))  # [n]; batchtopk: one θ for all
        for name in ("r_mag", "b_mag"):                                    # gated: unchanged by the fold
            if hasattr(sae, name):
                t[name] = getattr(sae, name).float()
        if sae.saelens_architecture == "gated":
            t["b_gate"] = t.pop("b_enc")                                   # SAELens's name for the gate bias
    return {k: v.detach().cpu().contiguous() for k, v in t.items()}


def to_raw_units(sae: SAE) -> SAE:
    """A copy of an SAE trained on s·x (cfg.norm_scale = s) that reads raw activations,
    as `load_sae` would return it after `save_sae`: cfg.norm_scale = 1,
    folded_norm_scale = s, same feature activations."""
    from dataclasses import replace

    s = float(sae.cfg.norm_scale) * float(getattr(sae, "folded_norm_scale", 1.0))
    tensors = _folded_tensors(sae)
    raw = sae_from_tensors(replace(sae.cfg, norm_scale=1.0), tensors, sae.apply_b_dec_to_input, Path("<in memory>"))
    raw.folded_norm_scale = s
    return raw


def _saelens_cfg(sae: SAE, metadata: dict[str, Any]) -> dict[str, Any]:
    cfg = sae.cfg
    out: dict[str, Any] = {
        "architecture": sae.saelens_architecture,
        "d_in": cfg.d_in,
        "d_sae": cfg.n_latents,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": dict(metadata),
        # Older SAELens (< 6) reads these at the top level.
        "activation_fn_str": "topk" if sae.saelens_architecture == "topk" else "relu",
        "activation_fn_kwargs": {"k": cfg.k} if sae.saelens_architecture == "topk" else {},
        "finetuning_scaling_factor": False,
        "hook_head_index": None,
    }
    for key in ("model_name", "hook_name", "hook_layer", "context_size", "prepend_bos", "dataset_path"):
        if key in metadata:
            out[key] = metadata[key]
    if sae.saelens_architecture == "topk":
        out["k"] = cfg.k
        out["rescale_acts_by_decoder_norm"] = False
    return out


def save_sae(sae: SAE, directory: str | os.PathLike, *, metadata: dict | None = None, source: dict | None = None) -> Path:
    """Write `directory` (replacing any previous one) in raw units; `source` records
    where an imported SAE came from (`monosemantic import`). The files are
    written into a hidden sibling directory that is renamed into place at the end,
    so `directory` is either the old complete SAE, absent, or the new complete SAE."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        tensors = _folded_tensors(sae)
        write_with(tmp / WEIGHTS, lambda p: save_file(tensors, str(p)))
        cfg = _saelens_cfg(sae, metadata or {})
        trained_scale = float(sae.cfg.norm_scale) * float(getattr(sae, "folded_norm_scale", 1.0))
        cfg["monosemantic"] = {
            "format_version": FORMAT_VERSION,
            "architecture": sae.cfg.architecture,
            "config": sae.cfg.to_dict() | {"norm_scale": 1.0},   # the weights here are in raw units
            "folded_norm_scale": trained_scale,                 # the s the SAE was trained with
        } | ({"source": source} if source else {})
        write_json(tmp / CFG, cfg)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _fail(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}; re-save the SAE or retrain it (`monosemantic train`)")


def _read_cfg(directory: Path) -> dict:
    path = directory / CFG
    if not path.is_file():
        raise _fail(path, "missing (not an SAE directory?)")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _fail(path, f"not valid JSON ({e})") from e
    if not isinstance(cfg, dict):
        raise _fail(path, "not a JSON object")
    return cfg


def _config_from(cfg: dict, path: Path) -> tuple[SAEConfig, float, float]:
    """-> (our config in raw units, trained norm scale, SAELens's apply_b_dec_to_input)."""
    apply = bool(cfg.get("apply_b_dec_to_input", False))
    ours = cfg.get("monosemantic")
    arch = ours.get("architecture")
    if arch not in ALL_ARCHITECTURES:
        raise _fail(path, f"unknown architecture {arch!r} (known: {sorted(ALL_ARCHITECTURES)})")
    raw = ours.get("config", {})
    known = {f.name for f in fields(SAEConfig)}
    try:
        config = SAEConfig(**{k: v for k, v in raw.items() if k in known})
    except TypeError as e:
        raise _fail(path, f"incomplete config ({e})") from e
    return config, float(ours.get("folded_norm_scale", 1.0)), apply


def load_sae(directory: str | os.PathLike) -> SAE:
    """The SAE in `directory`, in raw units (cfg.norm_scale = 1; the scale it was
    trained with is `sae.folded_norm_scale`), on CPU, float32, in eval mode. A
    directory SAELens wrote (no "monosemantic" key) is converted on the fly
    (formats/saelens.py); other libraries' folders: `monosemantic import`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no SAE directory here; train one (`monosemantic train`) "
                              f"or pass a run's sae/ folder")
    raw_cfg = _read_cfg(directory)
    if not isinstance(raw_cfg.get("monosemantic"), dict):
        from .formats.saelens import read_saelens

        return read_saelens(directory).sae
    config, trained_scale, saved_apply = _config_from(raw_cfg, directory / CFG)
    wpath = directory / WEIGHTS
    sae = sae_from_tensors(config, read_safetensors(wpath), saved_apply, wpath)
    if not math.isfinite(trained_scale) or trained_scale <= 0:
        raise _fail(directory / CFG, f"folded_norm_scale={trained_scale!r} is not a positive number")
    sae.folded_norm_scale = trained_scale
    return sae


def read_safetensors(wpath: Path) -> dict[str, torch.Tensor]:
    if not wpath.is_file():
        raise _fail(wpath, "missing")
    try:
        return load_file(str(wpath), device="cpu")
    except Exception as e:  # safetensors raises several types for a truncated/garbled file
        raise _fail(wpath, f"unreadable or corrupt ({type(e).__name__}: {e})") from e


def expected_shapes(config: SAEConfig) -> dict[str, tuple[int, ...]]:
    """SAELens tensor names and shapes for an architecture of ours."""
    d, n = config.d_in, config.n_latents
    shapes = {"W_enc": (d, n), "W_dec": (n, d), "b_enc": (n,), "b_dec": (d,)}
    if config.architecture in ("jumprelu", "batchtopk"):
        shapes["threshold"] = (n,)
    if config.architecture == "gated":
        shapes |= {"r_mag": (n,), "b_mag": (n,)}
    return shapes


def sae_from_tensors(config: SAEConfig, tensors: dict[str, torch.Tensor], saved_apply: bool, where: Path) -> SAE:
    """Our SAE (float32, CPU, eval mode) from SAELens-named tensors in raw units.
    `saved_apply`: whether the encoder these tensors came from subtracts b_dec from
    its input; where it differs from ours, b_dec @ W_enc moves into the biases:
    x@W + b_enc − a·b_dec@W  ==  x@W + b_enc' − a_ours·b_dec@W."""
    try:
        sae = make_sae(config)
    except ConfigError as e:
        raise _fail(where, str(e)) from e
    if config.architecture == "gated" and "b_enc" not in tensors and "b_gate" in tensors:
        tensors = {**tensors, "b_enc": tensors["b_gate"]}
    for name, shape in expected_shapes(config).items():
        if name not in tensors:
            raise _fail(where, f"has no tensor {name!r}")
        if tuple(tensors[name].shape) != shape:
            raise _fail(where, f"tensor {name!r} has shape {tuple(tensors[name].shape)}, the config says {shape}")
    t = {k: v.detach().float().cpu() for k, v in tensors.items()}
    if not all(bool(torch.isfinite(t[k]).all()) for k in expected_shapes(config)):
        raise _fail(where, "holds NaN or infinite weights")
    shift = int(sae.apply_b_dec_to_input) - int(saved_apply)
    moved = t["b_dec"] @ t["W_enc"]                                       # [n]
    with torch.no_grad():
        sae.W_enc.copy_(t["W_enc"])
        sae.W_dec.copy_(t["W_dec"])
        sae.b_enc.copy_(t["b_enc"] + shift * moved if shift else t["b_enc"])
        sae.b_dec.copy_(t["b_dec"])
        if config.architecture == "gated":
            sae.r_mag.copy_(t["r_mag"])
            sae.b_mag.copy_(t["b_mag"] + shift * moved * t["r_mag"].exp() if shift else t["b_mag"])
        elif config.architecture == "jumprelu":
            # ReLU(pre)·[pre > θ] (SAELens, dictionary_learning) equals our pre·[pre > θ]
            # for θ > 0; θ ≤ 0 acts as θ = 0, kept positive for the log parametrisation.
            sae.log_threshold.copy_(t["threshold"].clamp_min(1e-12).log())
        elif config.architecture == "batchtopk":
            sae.threshold.copy_(t["threshold"].max())
            sae.threshold_updates.fill_(1)
    sae.folded_norm_scale = 1.0
    return sae.eval()
