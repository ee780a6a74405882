"""`Run`: a run directory, resolved in one place. Every stage takes a Run (or a path,
turned into one by `Run.of`) and asks it where the run's store, tokens, model, layer,
SAE, feature database and metrics are, instead of working it out again.

Where things live (docs/architecture.md, "Run directory"):
- the store and tokens are the run's own, or another run's when the SAE was trained
  with `--activations OTHER_RUN[/activations]` (config.json's train.activations), or a
  plain [N, d] .npy (no tokens, no model: spliced loss and features need them);
- the model spec and layer are what the harvest recorded (the store's manifest), else
  what the SAE, config.json or the feature database recorded, in that order;
- the model dtype policy: stages that compare with the store (harvest, eval,
  features) load the model with ANALYSIS_DTYPE (`auto`: bfloat16 where this CPU runs it
  natively; the store's manifest records what its harvest used), stages that
  generate or show text to a person (steering, web) with GENERATION_DTYPE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import atomic
from .activations import ActivationStore, Tokens, open_store
from .activations.layout import MANIFEST, activations_dir
from .data import load_tokens
from .errors import ConfigError, StoreError
from .models import load_model
from .run_config import check_run_dir, read_config, record_stage
from .sae import load_sae

ANALYSIS_DTYPE = "auto"
GENERATION_DTYPE = "float32"
METRICS = "metrics.jsonl"


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl file, in order; a line cut by a kill, or holding
    bytes that are not UTF-8, is skipped."""
    path = Path(path)
    records = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return records
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _read_json_or_empty(path: Path) -> dict:
    try:
        data = atomic.read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_store_name(name: str) -> bool:
    """RUN/activations, or a per-layer store RUN/activations-layerL (`harvest --layers`)."""
    return name == "activations" or name.startswith("activations-layer")


class Run:
    def __init__(self, path: str | Path):
        self.dir = check_run_dir(path)

    @classmethod
    def of(cls, run: "Run | str | Path") -> "Run":
        return run if isinstance(run, Run) else cls(run)

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r})"

    # --- config.json ------------------------------------------------------------------
    @property
    def config(self) -> dict:
        return read_config(self.dir)

    def record(self, stage: str, settings: dict, replace: bool = False) -> dict:
        """Store a stage's settings in config.json (refusing other settings than a
        previous start of the stage, unless `replace`)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return record_stage(self.dir, stage, settings, replace=replace)

    # --- store and tokens -------------------------------------------------------------
    @property
    def _shared(self) -> Path | None:
        config = self.config   # a store lent by `train --activations` or `import --activations`
        shared = (config.get("train") or {}).get("activations") or (config.get("import") or {}).get("activations")
        return Path(shared) if shared else None

    @property
    def store_dir(self) -> Path:
        """The store this run's SAE reads: the one `train --activations` named (another
        run's, a per-layer store RUN/activations-layerL of `harvest --layers`, or a
        plain .npy file), else RUN/activations."""
        shared = self._shared
        if shared is None:
            return self.dir / "activations"
        return shared if shared.suffix == ".npy" else activations_dir(shared)

    @property
    def data_root(self) -> Path:
        """The run directory holding the store and tokens this run's SAE was trained
        on: this one, or the store's run (several SAEs can share one store)."""
        store = self.store_dir
        if store.suffix == ".npy":
            return self.dir
        return store.parent if _is_store_name(store.name) else store

    @property
    def store_path(self) -> Path:
        """What `open_store` is given: the data root, or the store itself when it is not
        RUN/activations (a per-layer store, or the plain .npy of `train --activations`)."""
        store = self.store_dir
        return self.data_root if store.name == "activations" else store

    def store(self) -> ActivationStore:
        return open_store(self.store_path)

    @property
    def manifest(self) -> dict:
        """The finished store's manifest.json, or {} (no store yet, or a plain .npy)."""
        store = self.store_dir
        return {} if store.suffix == ".npy" else _read_json_or_empty(store / MANIFEST)

    @property
    def tokens_dir(self) -> Path:
        return self.data_root / "tokens"

    @property
    def has_tokens(self) -> bool:
        return self.tokens_dir.is_dir()

    def tokens(self) -> Tokens:
        """The packed contexts the store was harvested from."""
        if not (self.tokens_dir / "contexts.npy").is_file():
            raise StoreError(f"{self.tokens_dir} has no packed tokens: run `monosemantic harvest {self.data_root}` first")
        t = load_tokens(self.tokens_dir)
        return Tokens(np.asarray(t.contexts), np.asarray(t.doc_ids), np.asarray(t.doc_pos))

    # --- model and layer ----------------------------------------------------------------
    @property
    def sae_cfg(self) -> dict:
        """RUN/sae/cfg.json (SAELens keys: model_name, hook_layer, ...), or {}."""
        return _read_json_or_empty(self.sae_dir / "cfg.json")

    @property
    def features_meta(self) -> dict:
        if not self.features_db_path.is_file():
            return {}
        from .features import FeatureDB, FeatureDBError   # features/ imports this module

        try:
            with FeatureDB(self.features_db_path, readonly=True) as db:
                return dict(db.meta)
        except FeatureDBError:
            return {}

    @property
    def model_spec(self) -> str | None:
        """What `load_model` is given for this run ("embedded", a path, an HF id)."""
        m = self.manifest
        harvest = self.config.get("harvest") or {}
        for spec in (m.get("model_spec"), m.get("model"), harvest.get("model")):
            if spec:
                return str(spec)
        return self.features_meta.get("model_spec")

    @property
    def model_name(self) -> str | None:
        """The model's name as the SAE recorded it (what it was trained on)."""
        return self.sae_cfg.get("model_name") or self.manifest.get("model") or self.features_meta.get("model")

    @property
    def layer(self) -> int | None:
        harvest = self.config.get("harvest") or {}
        for v in (self.manifest.get("layer"), self.sae_cfg.get("hook_layer"), harvest.get("layer")):
            if v is not None:
                return int(v)
        v = self.features_meta.get("layer")
        return None if v is None else int(v)

    def load_model(self, dtype: str = ANALYSIS_DTYPE, spec: str | None = None, device: str = "cpu"):
        """The run's language model (or `spec` instead), on `device`."""
        spec = spec or self.model_spec
        if spec is None:
            raise ConfigError(f"{self.dir} does not record its model (no activations/manifest.json, config.json harvest "
                              "stage or features.db): pass --model")
        return load_model(spec, dtype=dtype, device=device)

    # --- SAE, features, metrics ---------------------------------------------------------
    @property
    def sae_dir(self) -> Path:
        return self.dir / "sae"

    @property
    def has_sae(self) -> bool:
        return (self.sae_dir / "cfg.json").is_file() and (self.sae_dir / "sae_weights.safetensors").is_file()

    def sae(self):
        """The trained SAE in raw units (sae.io.load_sae)."""
        if not self.sae_dir.is_dir():
            raise StoreError(f"{self.sae_dir} does not exist: train the SAE first (`monosemantic train {self.dir}`)")
        return load_sae(self.sae_dir)

    @property
    def features_db_path(self) -> Path:
        return self.dir / "features.db"

    @property
    def metrics_path(self) -> Path:
        return self.dir / METRICS

    def metrics(self) -> list[dict]:
        return read_metrics(self.metrics_path)

    def last_metrics(self) -> dict:
        records = self.metrics()
        return records[-1] if records else {}

    def eval_result(self) -> dict:
        """RUN/eval.json, or {} before the eval."""
        return _read_json_or_empty(self.dir / "eval.json")
