"""dictionary_learning (saprmarks) checkpoints: `ae.pt` (a state dict) beside the
trainer's `config.json` ({"trainer": {"dict_class", "activation_dim", "dict_size",
"k", "lm_name", "layer", ...}, "buffer": {"ctx_len", ...}}).

`ae.pt` is read with torch.load(weights_only=True): tensors only, a planted pickle
cannot run code. Its classes, as their encode/decode define them:

  AutoEncoder          f = ReLU(enc(x − bias)), x̂ = dec(f) + bias         -> relu
  AutoEncoderNew       f = ReLU(enc(x)),        x̂ = dec(f) (with bias)     -> relu
  GatedAutoEncoder     gate/magnitude paths on x − decoder_bias           -> gated
  JumpReluAutoEncoder  f = ReLU(pre·[pre > θ]), no b_dec at the input     -> jumprelu
  AutoEncoderTopK      top-k of ReLU(enc(x − b_dec))                      -> topk
  BatchTopKSAE, MatryoshkaBatchTopKSAE  ReLU(pre)·[ReLU(pre) > θ]         -> batchtopk

Weights are saved in raw units (the trainer undoes its norm_factor with
scale_biases before saving), so no scale is folded."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import torch

from ...errors import CheckpointError
from ..base import SAEConfig
from ..io import sae_from_tensors
from .common import Imported, hook_layer


def _classify(state: dict, dict_class: str | None) -> str:
    if dict_class:
        return dict_class
    if "gate_bias" in state:
        return "GatedAutoEncoder"
    if "threshold" in state and "W_enc" in state:
        return "JumpReluAutoEncoder" if state["threshold"].ndim == 1 else "MatryoshkaBatchTopKSAE"
    if "k" in state:  # TopK and BatchTopK hold the same tensors: without config.json, TopK (its default encode)
        return "AutoEncoderTopK"
    if "decoder.bias" in state:
        return "AutoEncoderNew"
    return "AutoEncoder"


def _tensors(kind: str, s: dict) -> tuple[dict, bool, int, str]:
    """-> (SAELens-named tensors, encoder subtracts b_dec, k, our architecture)."""
    k = int(s["k"]) if "k" in s else 32
    if kind == "AutoEncoder":
        return {"W_enc": s["encoder.weight"].t(), "b_enc": s["encoder.bias"], "W_dec": s["decoder.weight"].t(), "b_dec": s["bias"]}, True, k, "relu"
    if kind == "AutoEncoderNew":
        return {"W_enc": s["encoder.weight"].t(), "b_enc": s["encoder.bias"], "W_dec": s["decoder.weight"].t(), "b_dec": s["decoder.bias"]}, False, k, "relu"
    if kind == "GatedAutoEncoder":
        return {"W_enc": s["encoder.weight"].t(), "b_enc": s["gate_bias"], "b_mag": s["mag_bias"], "r_mag": s["r_mag"],
                "W_dec": s["decoder.weight"].t(), "b_dec": s["decoder_bias"]}, True, k, "gated"
    if kind == "JumpReluAutoEncoder":
        t = {n: s[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec")}         # θ ≤ 0 acts as θ = 0 (ReLU first)
        return t | {"threshold": s["threshold"].float().clamp_min(1e-12)}, False, k, "jumprelu"
    if kind in ("AutoEncoderTopK", "BatchTopKSAE"):
        t = {"W_enc": s["encoder.weight"].t(), "b_enc": s["encoder.bias"], "W_dec": s["decoder.weight"].t(), "b_dec": s["b_dec"]}
        if kind == "AutoEncoderTopK":
            return t, True, k, "topk"
        return t | {"threshold": s["threshold"].float().clamp_min(0).expand(t["b_enc"].shape)}, True, k, "batchtopk"
    if kind == "MatryoshkaBatchTopKSAE":
        t = {n: s[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec")}
        return t | {"threshold": s["threshold"].float().clamp_min(0).expand(t["b_enc"].shape)}, True, k, "batchtopk"
    raise KeyError(kind)


def read_dictionary_learning(path: Path) -> Imported:
    path = Path(path)
    ae = path / "ae.pt" if path.is_dir() else path
    config_path = ae.parent / "config.json"
    trainer = {}
    if config_path.is_file():
        try:
            trainer = json.loads(config_path.read_text()).get("trainer") or {}
        except (ValueError, AttributeError) as e:
            raise CheckpointError(f"{config_path}: not valid JSON ({e})") from e
    try:
        state = torch.load(ae, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise CheckpointError(f"{ae}: not a tensor-only state dict ({type(e).__name__}: {str(e).splitlines()[0]}); "
                              "monosemantic never unpickles code") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{ae}: holds a {type(state).__name__}, not a state dict (save ae.state_dict())")
    kind = _classify(state, trainer.get("dict_class"))
    try:
        tensors, applies, k, arch = _tensors(kind, state)
    except KeyError as e:
        raise CheckpointError(f"{ae}: a {kind} state dict without {e} (not a dictionary_learning SAE, or another version)") from e
    d, n = tensors["W_dec"].shape[1], tensors["W_dec"].shape[0]
    sae = sae_from_tensors(SAEConfig(arch, int(d), int(n), k=min(k, int(n))), tensors, applies, ae)
    meta = {}
    if isinstance(trainer.get("lm_name"), str):
        meta["model_name"] = trainer["lm_name"]
    if isinstance(trainer.get("layer"), int):
        meta["hook_layer"] = trainer["layer"]
    if hook_layer(trainer.get("submodule_name")) is not None:
        meta["hook_layer"] = hook_layer(trainer.get("submodule_name"))
    meta["hook_name"] = trainer.get("submodule_name")
    return Imported(sae, {"format": "dictionary_learning", "path": str(ae.resolve()), "architecture": kind, "conversions": []}, meta)
