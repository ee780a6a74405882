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

from ..atomic import read_json, write_json, write_with
from ..errors import CheckpointError, ConfigError
from .base import SAE, SAEConfig
from .registry import ALL_ARCHITECTURES, config_for, make_sae

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
        t.update({name: v.float() for name, v in sae.extra_tensors().items()})  # e.g. threshold [n]: unit-free
    t = {sae.saelens_renames.get(k, k): v for k, v in t.items()}           # gated: b_enc is SAELens's b_gate
    return {k: v.detach().cpu().contiguous() for k, v in t.items()}


def to_raw_units(sae: SAE) -> SAE:
    """A copy of an SAE trained on s·x (cfg.norm_scale = s) that reads raw activations,
    as `load_sae` would return it after `save_sae`: cfg.norm_scale = 1,
    folded_norm_scale = s, same feature activations."""
    from dataclasses import replace

    s = float(sae.cfg.norm_scale) * float(getattr(sae, "folded_norm_scale", 1.0))
    raw = sae_from_tensors(replace(sae.cfg, norm_scale=1.0), _folded_tensors(sae), sae.apply_b_dec_to_input, Path("<in memory>"))
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
        # Older SAELens (< 6) reads these (and activation_fn_str/kwargs) at the top level.
        "finetuning_scaling_factor": False,
        "hook_head_index": None,
    }
    for key in ("model_name", "hook_name", "hook_layer", "context_size", "prepend_bos", "dataset_path"):
        if key in metadata:
            out[key] = metadata[key]
    out.update(sae.saelens_cfg())
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
        cfg = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _fail(path, f"not valid JSON ({e})") from e
    if not isinstance(cfg, dict):
        raise _fail(path, "not a JSON object")
    return cfg


def _config_from(cfg: dict, path: Path) -> tuple[SAEConfig, float, float]:
    """Our own cfg.json -> (config in raw units, trained norm scale, apply_b_dec_to_input)."""
    apply = bool(cfg.get("apply_b_dec_to_input", False))
    ours = cfg["monosemantic"]
    arch = ours.get("architecture")
    if arch not in ALL_ARCHITECTURES:
        raise _fail(path, f"unknown architecture {arch!r} (known: {sorted(ALL_ARCHITECTURES)})")
    raw = ours.get("config", {})
    known = {f.name for f in fields(ALL_ARCHITECTURES[arch].config_class)}
    try:
        config = config_for({k: v for k, v in raw.items() if k in known})
    except ConfigError as e:
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


def sae_from_tensors(config: SAEConfig, tensors: dict[str, torch.Tensor], saved_apply: bool, where: Path) -> SAE:
    """Our SAE (float32, CPU, eval mode) from SAELens-named tensors in raw units.
    `saved_apply`: whether the encoder these tensors came from subtracts b_dec from
    its input; where it differs from ours, b_dec @ W_enc moves into the encoder
    biases (the class's `absorb_input_shift`):
    x@W + b_enc − a·b_dec@W  ==  x@W + b_enc' − a_ours·b_dec@W."""
    try:
        sae = make_sae(config)
    except ConfigError as e:
        raise _fail(where, str(e)) from e
    theirs = {v: k for k, v in sae.saelens_renames.items()}
    t = {theirs.get(k, k): v.detach().float().cpu() for k, v in tensors.items()}
    d, n = config.d_in, config.n_latents
    expected = {"W_enc": (d, n), "W_dec": (n, d), "b_enc": (n,), "b_dec": (d,)} | type(sae).extra_tensor_shapes(config)
    for name, shape in expected.items():
        if name not in t:
            raise _fail(where, f"has no tensor {sae.saelens_renames.get(name, name)!r}")
        if tuple(t[name].shape) != shape:
            raise _fail(where, f"tensor {name!r} has shape {tuple(t[name].shape)}, the config says {shape}")
    bad = [name for name in expected if not bool(torch.isfinite(t[name]).all())]
    if bad:
        raise _fail(where, f"has NaN or infinite values in {', '.join(bad)} (training diverged or the file is damaged): train it again")
    shift = int(sae.apply_b_dec_to_input) - int(saved_apply)
    if shift:
        t = type(sae).absorb_input_shift(t, shift * (t["b_dec"] @ t["W_enc"]))
    with torch.no_grad():
        sae.W_enc.copy_(t["W_enc"])
        sae.W_dec.copy_(t["W_dec"])
        sae.b_enc.copy_(t["b_enc"])
        sae.b_dec.copy_(t["b_dec"])
        try:
            sae.load_extra_tensors(t)
        except ValueError as e:
            raise _fail(where, str(e)) from e
    sae.folded_norm_scale = 1.0
    return sae.eval()
