"""File names and the completeness rule of an activation store directory.

A shard `shard-NNNNN` is three files: `.npy` (raw activations [n, d]), `.rows.npy`
(int32 [n, 4]: context id, position, document id, position in document) and `.json`
(its summary), the `.json` written last: a shard without it is incomplete and is
redone. `manifest.json` is written only when the harvest finished: a directory
without it is not a store."""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
STATE = "harvest.json"
ROW_COLUMNS = ("context_id", "position", "doc_id", "doc_pos")


def shard_stem(index: int) -> str:
    return f"shard-{index:05d}"


def shard_paths(directory: Path, index: int) -> tuple[Path, Path, Path]:
    stem = shard_stem(index)
    return directory / f"{stem}.npy", directory / f"{stem}.rows.npy", directory / f"{stem}.json"


def activations_dir(path: str | Path) -> Path:
    """Accept a run directory or its activations/ directory."""
    path = Path(path)
    return path / "activations" if (path / "activations").is_dir() else path
