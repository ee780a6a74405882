"""Opening a run for steering: its model, its SAE, the layer, and each feature's max
activation from features.db (the unit of "=Nx" clamps). Checks that the model matches
the one the SAE was trained on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError


@dataclass
class SteeringRun:
    run_dir: Path
    lm: object                        # LanguageModel
    sae: torch.nn.Module
    layer: int
    max_acts: torch.Tensor | None     # [n_latents] max activation over the dataset (None without features.db)

    @property
    def n_latents(self) -> int:
        return int(self.sae.W_dec.shape[0])


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def read_max_acts(db_path: Path, n_latents: int) -> torch.Tensor | None:
    if not db_path.is_file():
        return None
    from ..features import FeatureDB

    db = FeatureDB(db_path, readonly=True)
    try:
        rows = db.conn.execute("SELECT id, max_act FROM features WHERE kind = 'feature'").fetchall()
    finally:
        db.close()
    out = torch.zeros(n_latents)
    for fid, mx in rows:
        if 0 <= fid < n_latents:
            out[fid] = float(mx or 0.0)
    return out


def open_run(run: str | Path, model: str | None = None, layer: int | None = None, dtype: str = "float32", lm=None) -> SteeringRun:
    """model/layer override what the run recorded; the model must still be the one the
    SAE was trained on (same name and width)."""
    from ..models import load_model
    from ..sae import load_sae

    run_dir = Path(run)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a run directory (expected RUN/sae and RUN/features.db)")
    sae = load_sae(run_dir / "sae")
    sae_cfg = _read_json(run_dir / "sae" / "cfg.json")
    db_meta = {}
    if (run_dir / "features.db").is_file():
        from ..features import FeatureDB

        with FeatureDB(run_dir / "features.db", readonly=True) as db:
            db_meta = dict(db.meta)
    harvest = _read_json(run_dir / "config.json").get("harvest", {})
    manifest = _read_json(run_dir / "activations" / "manifest.json")
    spec = model or db_meta.get("model_spec") or manifest.get("model_spec") or harvest.get("model")
    if layer is None:
        layer = next((int(v) for v in (db_meta.get("layer"), sae_cfg.get("hook_layer"), harvest.get("layer")) if v is not None), None)
    if spec is None or layer is None:
        raise ConfigError(f"{run_dir} does not record its model and layer: pass --model and --layer")
    if lm is None:
        lm = load_model(spec, dtype=dtype)
    trained_on = sae_cfg.get("model_name") or db_meta.get("model")
    from ..interop.metadata import same_model

    if trained_on and not same_model(lm.name, trained_on):
        raise ConfigError(f"the SAE in {run_dir} was trained on {trained_on!r} but the model loaded is {lm.name!r}: "
                          f"steer with the run's own model")
    from .interventions import check_compatible

    check_compatible(lm, sae, int(layer))
    return SteeringRun(run_dir, lm, sae, int(layer), read_max_acts(run_dir / "features.db", int(sae.W_dec.shape[0])))
