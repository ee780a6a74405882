"""sparsify (EleutherAI) folders, `SparseCoder.save_to_disk`: `cfg.json` (its
SparseCoderConfig + d_in) and `sae.safetensors` with

    encoder.weight [n, d]   encoder.bias [n]   W_dec [n, d]   b_dec [d]   (W_skip [d, d])

    f = top-k of ReLU((x − b_dec) @ encoder.weightᵀ + encoder.bias),  x̂ = f @ W_dec + b_dec

which is our topk with W_enc = encoder.weightᵀ. A trainer writes one such folder per
hookpoint (`layers.15/`), which names the layer. Transcoders, skip connections and
groupmax activations are not SAEs of one residual stream: refused.

Export writes the same layout for our topk SAEs (sparsify has no other inference
activation, so relu/jumprelu/batchtopk/gated are refused with a pointer to SAELens)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from ... import atomic
from ...errors import CheckpointError, ConfigError
from ..base import SAE, SAEConfig
from ..io import read_safetensors, sae_from_tensors
from .common import Imported, hook_layer

CFG = "cfg.json"
WEIGHTS = "sae.safetensors"


def read_sparsify(directory: Path) -> Imported:
    directory = Path(directory)
    path = directory / CFG
    try:
        cfg = json.loads(path.read_text())
        d, n_cfg, k = int(cfg["d_in"]), int(cfg.get("num_latents") or 0), int(cfg.get("k", 32))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a sparsify config ({type(e).__name__}: {e})") from e
    for flag, what in (("transcode", "a transcoder (it predicts another module's output)"),
                       ("skip_connection", "an SAE with a linear skip connection")):
        if cfg.get(flag):
            raise CheckpointError(f"{directory}: {what} has no equivalent here; only plain sparsify SAEs import")
    if cfg.get("activation", "topk") != "topk":
        raise CheckpointError(f"{directory}: activation {cfg['activation']!r} is not supported (only topk)")
    t = read_safetensors(directory / WEIGHTS)
    if "encoder.weight" not in t:
        raise CheckpointError(f"{directory / WEIGHTS}: has no tensor 'encoder.weight' (not a sparsify SAE?)")
    n = int(t["encoder.weight"].shape[0]) if not n_cfg else n_cfg
    tensors = {"W_enc": t["encoder.weight"].t(), "b_enc": t.get("encoder.bias"),
               "W_dec": t.get("W_dec"), "b_dec": t.get("b_dec")}
    tensors = {name: v for name, v in tensors.items() if v is not None}
    sae = sae_from_tensors(SAEConfig("topk", d, n, k=k), tensors, True, directory / WEIGHTS)
    meta = {"hook_name": directory.name}
    if hook_layer(directory.name) is not None:
        meta["hook_layer"] = hook_layer(directory.name)
    run_cfg = directory.parent / "config.json"  # the trainer's run config, when the folder sits in a run
    try:
        model = json.loads(run_cfg.read_text()).get("model")
        if isinstance(model, str):
            meta["model_name"] = model
    except (OSError, ValueError, AttributeError):
        pass
    return Imported(sae, {"format": "sparsify", "path": str(directory.resolve()), "architecture": "topk", "conversions": []}, meta)


def write_sparsify(sae: SAE, out_dir: Path, hookpoint: str) -> Path:
    """OUT/<hookpoint>/{cfg.json, sae.safetensors}: what `SparseCoder.load_many(OUT,
    local=True)` and `SparseCoder.load_from_disk(OUT/<hookpoint>)` read."""
    if sae.cfg.architecture != "topk":
        raise ConfigError(f"sparsify runs only TopK SAEs; this one is {sae.cfg.architecture}: "
                          "export it with --format saelens instead")
    from ..io import _folded_tensors

    t = _folded_tensors(sae)
    tensors = {"encoder.weight": t["W_enc"].t().contiguous(), "encoder.bias": t["b_enc"],
               "W_dec": t["W_dec"], "b_dec": t["b_dec"]}
    folder = Path(out_dir) / hookpoint
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_with(folder / WEIGHTS, lambda p: save_file(tensors, str(p)))
    # normalize_decoder is a training setting (renormalise after each step); the rows
    # of a folded SAE have norm 1/s, so it is off: fine-tuning keeps them as they are.
    atomic.write_json(folder / CFG, {"activation": "topk", "expansion_factor": max(sae.cfg.n_latents // sae.cfg.d_in, 1),
                                     "normalize_decoder": False, "num_latents": sae.cfg.n_latents, "k": sae.cfg.k,
                                     "multi_topk": False, "skip_connection": False, "transcode": False,
                                     "d_in": sae.cfg.d_in})
    return folder
