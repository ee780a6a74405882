"""Opening a run for steering: its model, its SAE, the layer, and each feature's max
activation from features.db (the unit of "=Nx" clamps). Checks that the model matches
the one the SAE was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError
from ..features import FeatureDB
from ..interop.metadata import same_model
from ..run import GENERATION_DTYPE, Run
from ..sae import load_sae
from .interventions import check_compatible


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


def read_max_acts(db_path: Path, n_latents: int) -> torch.Tensor | None:
    if not db_path.is_file():
        return None
    with FeatureDB(db_path, readonly=True) as db:
        max_acts = db.max_activations()
    out = torch.zeros(n_latents)
    for fid, mx in max_acts.items():
        if 0 <= fid < n_latents:
            out[fid] = mx
    return out


def open_run(run: Run | str | Path, model: str | None = None, layer: int | None = None, dtype: str = GENERATION_DTYPE,
             lm=None) -> SteeringRun:
    """model/layer override what the run recorded; the model must still be the one the
    SAE was trained on (same name and width)."""
    run = Run.of(run)
    if not run.dir.is_dir():
        raise ConfigError(f"{run.dir} is not a run directory (expected RUN/sae and RUN/features.db)")
    sae = load_sae(run.sae_dir)
    layer = layer if layer is not None else run.layer
    if layer is None or (lm is None and model is None and run.model_spec is None):
        raise ConfigError(f"{run.dir} does not record its model and layer: pass --model and --layer")
    if lm is None:
        lm = run.load_model(dtype, spec=model)
    trained_on = run.model_name
    if trained_on and not same_model(lm.name, trained_on):
        raise ConfigError(f"the SAE in {run.dir} was trained on {trained_on!r} but the model loaded is {lm.name!r}: "
                          f"steer with the run's own model")
    check_compatible(lm, sae, int(layer))
    return SteeringRun(run.dir, lm, sae, int(layer), read_max_acts(run.features_db_path, int(sae.W_dec.shape[0])))
