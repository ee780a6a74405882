"""`monosemantic export RUN --format saelens|sparsify`: the run's SAE in a folder
another library loads as it is, with the metadata they read refreshed from the
store (older runs named the model by its display name and had no context size).

  saelens   OUT/ = cfg.json + sae_weights.safetensors  (SAE.load_from_disk(OUT))
  sparsify  OUT/layers.L/ = cfg.json + sae.safetensors (SparseCoder.load_many(OUT, local=True))"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError, MonosemanticError
from ..run import Run
from ..sae import load_sae, save_sae
from ..sae.formats.sparsify import write_sparsify
from .metadata import run_metadata

FORMATS = ("saelens", "sparsify")


def _saved(run_dir: Path) -> tuple[dict, dict | None]:
    """-> (the saved metadata, the recorded source of an imported SAE)."""
    try:
        cfg = json.loads((run_dir / "sae" / "cfg.json").read_text())
    except (OSError, ValueError):
        return {}, None                             # load_sae has already named the problem
    return cfg.get("metadata") or {}, (cfg.get("monosemantic") or {}).get("source")


def _metadata(run_dir: Path, saved: dict) -> dict:
    run = Run(run_dir)
    try:
        store = run.store()
    except MonosemanticError:
        return dict(saved)                          # no store here: keep what was saved
    return dict(saved) | run_metadata(store, run.data_root)


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Write RUN's SAE for `fmt` into `out` (default RUN/export/<fmt>); returns the
    folder to load."""
    run_dir = Path(run_dir)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    sae = load_sae(run_dir / "sae")
    out = Path(out) if out is not None else run_dir / "export" / fmt
    saved, source = _saved(run_dir)
    metadata = _metadata(run_dir, saved)
    if fmt == "saelens":
        return save_sae(sae, out, metadata=metadata, source=source)
    layer = metadata.get("hook_layer")
    return write_sparsify(sae, out, f"layers.{layer}" if layer is not None else "sae")
