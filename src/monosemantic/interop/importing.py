"""`monosemantic import SOURCE RUN`: an SAE trained elsewhere becomes RUN/sae, once
converted into our format (raw units, SAELens keys) with its source recorded, after
checking that it reads what the run's store holds: the same width, model and layer.

A width mismatch cannot be overridden (nothing downstream could run); a model or
layer mismatch can (`allow_mismatch`, for deliberate transfer experiments) and is
then recorded in cfg.json."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..activations import open_store
from ..activations.layout import MANIFEST, activations_dir
from ..errors import ConfigError, StoreError
from ..run import Run
from ..sae import save_sae
from ..sae.formats import Imported, detect, hook_layer, read_sae
from .metadata import hub_id, run_metadata, same_model


@dataclass
class ImportResult:
    imported: Imported
    sae_dir: Path
    notes: list[str]              # checks that could not be made, mismatches allowed


def _store_for(run_dir: Path, activations: str | Path | None):
    if activations is not None:
        return open_store(activations)
    root = Run(run_dir).data_root
    if not (activations_dir(root) / MANIFEST).is_file():
        raise StoreError(f"{run_dir} has no activation store to check the SAE against: pass --activations "
                         f"RUN_WITH_STORE, or harvest one first (`monosemantic harvest {run_dir}`)")
    return open_store(root)


def _mismatches(imported: Imported, store) -> tuple[list[str], list[str]]:
    """-> (model/layer mismatches, notes on what the source does not say)."""
    meta, bad, notes = imported.metadata, [], []
    theirs = meta.get("model_name")
    ours = {v for v in (store.model, store.manifest.get("model_spec"), hub_id(store.manifest.get("model_spec"), store.model)) if v}
    if not theirs:
        notes.append("the source names no model: not checked")
    elif ours and not any(same_model(str(theirs), v) for v in ours):
        bad.append(f"it was trained on model {theirs!r} but the store holds {store.model!r}")
    hook = meta.get("hook_name")
    if isinstance(hook, str) and hook and hook_layer(hook) is None:
        bad.append(f"it reads hook {hook!r}, not the residual stream the store holds ({store.manifest.get('hook_name')})")
    layer = meta.get("hook_layer")
    if layer is None:
        notes.append("the source names no layer: not checked")
    elif store.layer is not None and int(layer) != int(store.layer):
        bad.append(f"it reads the residual stream after layer {layer} but the store holds layer {store.layer}")
    return bad, notes


def _refuse_other_sae(run_dir: Path, source: Path) -> None:
    sae_dir = run_dir / "sae"
    if not sae_dir.exists():
        return
    previous = (Run(run_dir).config.get("import") or {}).get("source")
    if previous != str(source.resolve()):
        what = f"imported from {previous}" if previous else "trained by `monosemantic train`"
        raise ConfigError(f"{sae_dir} already holds an SAE ({what}): import into a new run directory "
                          f"(with --activations {run_dir}), or add --force to replace it")


def import_sae(source: str | Path, run_dir: str | Path, *, activations: str | Path | None = None,
               norm_scale: float | None = None, architecture: str | None = None, k: int | None = None,
               subtract_b_dec: bool | None = None, allow_mismatch: bool = False, force: bool = False) -> ImportResult:
    """Convert the SAE at `source` into RUN/sae, checked against the run's store (or
    `activations`, another run or store). SAELens SAEs trained on scaled inputs
    (expected_average_only_in) get `norm_scale`, or else the store's own √d / E‖x‖."""
    run_dir, source = Path(run_dir), Path(source)
    store = _store_for(run_dir, activations)
    fmt, where = detect(source)
    if not force:
        _refuse_other_sae(run_dir, where)
    from ..sae.formats.saelens import with_norm_scale

    notes: list[str] = []
    if fmt == "saelens" and norm_scale is None and with_norm_scale(where):
        norm_scale = store.norm_scale
        notes.append(f"input scale from the store: {norm_scale:.6g} = sqrt(d) / E|x|")
    imported = read_sae(where, norm_scale=norm_scale, architecture=architecture, k=k, subtract_b_dec=subtract_b_dec)
    d_in = imported.sae.cfg.d_in
    if d_in != store.d:
        raise ConfigError(f"{source}: the SAE reads width d_in={d_in} but the store {store.path} holds width {store.d} "
                          f"({store.model or 'unknown model'}, layer {store.layer}): import it into a run harvested "
                          "from the model and layer it was trained on")
    bad, unchecked = _mismatches(imported, store)
    notes += unchecked
    if bad and not allow_mismatch:
        raise ConfigError(f"{source}: {'; '.join(bad)}: import it into a run of that model and layer, "
                          "or add --allow-mismatch to use it here anyway")
    notes += [f"allowed: {b}" for b in bad]

    run_dir.mkdir(parents=True, exist_ok=True)
    settings = {"source": str(where.resolve()), "format": fmt, "activations": str(Path(activations).resolve()) if activations else None,
                "norm_scale": norm_scale, "architecture": architecture, "k": k, "subtract_b_dec": subtract_b_dec,
                "allow_mismatch": allow_mismatch}
    run = Run(run_dir)
    run.record("import", settings, replace=force)
    if force:
        (run_dir / "eval.json").unlink(missing_ok=True)   # it described the SAE being replaced
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    metadata = run_metadata(store, run.data_root)
    metadata["source_metadata"] = {k: v for k, v in imported.metadata.items() if isinstance(v, (str, int, float, bool))}
    sae_dir = save_sae(imported.sae, run_dir / "sae", metadata=metadata, source=imported.source | {"notes": notes})
    return ImportResult(imported, sae_dir, notes)
