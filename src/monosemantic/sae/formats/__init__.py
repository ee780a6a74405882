"""Other libraries' SAE files, read into our SAE class (raw units) with a record of
where they came from; `detect` tells them apart by the files a folder holds:

  cfg.json + sae_weights.safetensors   SAELens (ours too, with a "monosemantic" key)
  cfg.json + sae.safetensors           sparsify (one folder per hookpoint)
  ae.pt (+ config.json)                dictionary_learning
  *.safetensors, *.npz                 plain W_enc/W_dec/b_enc/b_dec"""

from __future__ import annotations

from pathlib import Path

from ...errors import CheckpointError
from .common import Imported, hook_layer

FORMATS = ("saelens", "sparsify", "dictionary_learning", "plain")


def _format_of(path: Path) -> str | None:
    if path.is_file():
        if path.suffix in (".safetensors", ".npz"):
            return "plain"
        if path.suffix == ".pt":
            return "dictionary_learning"
        return None
    if (path / "cfg.json").is_file() and (path / "sae_weights.safetensors").is_file():
        return "saelens"
    if (path / "cfg.json").is_file() and (path / "sae.safetensors").is_file():
        return "sparsify"
    if (path / "ae.pt").is_file():
        return "dictionary_learning"
    return None


def detect(path: str | Path) -> tuple[str, Path]:
    """-> (format, the file or folder to read). A folder holding exactly one SAE
    folder (a sparsify run with one hookpoint, a dictionary_learning `trainer_0/`)
    resolves to it; several are listed so the user can pick one."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    found = _format_of(path)
    if found:
        return found, path
    if path.is_dir():
        inner = sorted(p for p in path.iterdir() if p.is_dir() and _format_of(p))
        if len(inner) == 1:
            return _format_of(inner[0]), inner[0]
        if inner:
            names = ", ".join(p.name for p in inner[:8])
            raise CheckpointError(f"{path} holds {len(inner)} SAEs ({names}): import one of them, e.g. {inner[0]}")
    raise CheckpointError(f"{path}: not an SAE this toolkit reads (a SAELens or sparsify folder, a dictionary_learning "
                          "ae.pt, or a .safetensors/.npz with W_enc, W_dec, b_enc, b_dec)")


def read_sae(path: str | Path, *, norm_scale: float | None = None, architecture: str | None = None,
             k: int | None = None, subtract_b_dec: bool | None = None) -> Imported:
    """Any supported SAE as ours. `norm_scale` is folded into a SAELens SAE trained on
    scaled inputs (expected_average_only_in); the other options describe a plain file."""
    fmt, where = detect(path)
    if fmt == "saelens":

        from ..io import _read_cfg, load_sae
        from .saelens import read_saelens

        cfg = _read_cfg(where)
        if isinstance(cfg.get("monosemantic"), dict):  # one of ours
            meta = dict(cfg.get("metadata") or {})
            return Imported(load_sae(where), {"format": "monosemantic", "path": str(where.resolve()),
                                              "architecture": cfg["monosemantic"].get("architecture"), "conversions": []}, meta)
        return read_saelens(where, norm_scale=norm_scale)
    if fmt == "sparsify":
        from .sparsify import read_sparsify

        return read_sparsify(where)
    if fmt == "dictionary_learning":
        from .dictionary_learning import read_dictionary_learning

        return read_dictionary_learning(where)
    from .plain import read_plain

    return read_plain(where, architecture=architecture, k=k, subtract_b_dec=subtract_b_dec)


__all__ = ["FORMATS", "Imported", "detect", "hook_layer", "read_sae"]
