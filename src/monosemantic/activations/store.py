"""Reading an activation store: a harvested directory or a plain [N, d] .npy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..errors import StoreError
from .layout import MANIFEST, activations_dir, shard_paths
from .loader import BatchLoader, BatchStream
from .split import HELDOUT_FRACTION, is_heldout


@dataclass
class ActivationStore:
    """Raw activations in shards; `batches` and `sample` return them scaled by
    `norm_scale` so that E‖x‖ = √d."""

    shards: list[np.ndarray]  # each [n_i, d], memory-mapped
    rows: list[np.ndarray | None]  # each [n_i, 4] int32, or None for a plain .npy
    norm_scale: float
    manifest: dict = field(default_factory=dict)
    path: Path | None = None
    heldout_fraction: float = HELDOUT_FRACTION

    @property
    def d(self) -> int:
        return int(self.shards[0].shape[1])

    @property
    def count(self) -> int:
        return int(sum(s.shape[0] for s in self.shards))

    @property
    def dtype(self) -> str:
        return str(self.shards[0].dtype)

    @property
    def model(self) -> str | None:
        return self.manifest.get("model")

    @property
    def layer(self) -> int | None:
        return self.manifest.get("layer")

    def split_indices(self, split: str) -> np.ndarray:
        """Global row indices (int64) of the train or heldout split."""
        if split not in ("train", "heldout", "all"):
            raise StoreError(f"unknown split {split!r}: use train, heldout or all")
        parts, offset = [], 0
        for shard, rows in zip(self.shards, self.rows):
            n = shard.shape[0]
            index = np.arange(offset, offset + n, dtype=np.int64)
            if split != "all":
                ids = rows[:, 0] if rows is not None else index
                mask = is_heldout(ids, self.heldout_fraction)
                index = index[mask if split == "heldout" else ~mask]
            parts.append(index)
            offset += n
        return np.concatenate(parts)

    def gather(self, index: np.ndarray) -> np.ndarray:
        """Raw rows for global indices (any order), float32 [len(index), d]."""
        bounds = np.cumsum([0] + [s.shape[0] for s in self.shards])
        out = np.empty((len(index), self.d), dtype=np.float32)
        which = np.searchsorted(bounds, index, side="right") - 1
        for s in np.unique(which):
            sel = np.nonzero(which == s)[0]
            local = index[sel] - bounds[s]
            order = np.argsort(local)  # sequential reads from the memory map
            out[sel[order]] = self.shards[s][local[order]]
        return out

    def row_info(self, index: int) -> dict:
        """Context id, position, document id and position in document of a row."""
        bounds = np.cumsum([0] + [s.shape[0] for s in self.shards])
        if not 0 <= index < self.count:
            raise StoreError(f"row {index} is out of range: the store has {self.count} rows")
        s = int(np.searchsorted(bounds, index, side="right") - 1)
        rows = self.rows[s]
        if rows is None:
            raise StoreError("this store is a plain .npy: its rows cannot be traced back to text")
        context_id, position, doc_id, doc_pos = (int(v) for v in rows[index - bounds[s]])
        return {"row": index, "context_id": context_id, "position": position, "doc_id": doc_id, "doc_pos": doc_pos}

    def batches(
        self, batch_size: int = 4096, split: str = "train", seed: int = 0, start_batch: int = 0, prefetch: int = 4
    ) -> BatchStream:
        """Endless shuffled batches, float32 [batch_size, d], scaled. Each epoch is a
        fresh permutation of all rows of the split across every shard; batch k is
        the same whatever start_batch the stream began at. Take a finite number with
        itertools.islice; close() the stream (or let train_sae do it) to stop its
        prefetch thread."""
        index = self.split_indices(split)
        if len(index) < batch_size:
            raise StoreError(f"the {split} split has {len(index)} rows, fewer than one batch of {batch_size}")
        return BatchStream(BatchLoader(self, index, batch_size, seed, start_batch, prefetch))

    def sample(self, n: int, split: str = "heldout", seed: int = 0) -> torch.Tensor:
        """A deterministic sample of up to n rows, float32 [n, d], scaled."""
        index = self.split_indices(split)
        index = np.random.default_rng(seed).permutation(index)[:n]
        return torch.from_numpy(self.gather(index)).mul_(self.norm_scale)

    def check_matches(self, model: str | None = None, layer: int | None = None, d: int | None = None) -> None:
        """Refuse a store harvested from another model, layer or width."""
        if d is not None and d != self.d:
            raise StoreError(f"store {self.path} has width {self.d}, expected {d}")
        if model is not None and self.model is not None and model != self.model:
            raise StoreError(f"store {self.path} was harvested from {self.model}, not {model}")
        if layer is not None and self.layer is not None and layer != self.layer:
            raise StoreError(f"store {self.path} was harvested at layer {self.layer}, not layer {layer}")


def _load_npy(path: Path) -> ActivationStore:
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise StoreError(f"{path} is not a readable .npy file ({e})") from e
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise StoreError(f"{path} has shape {array.shape}: an activation array must be [N, d] with N, d > 0")
    if not np.issubdtype(array.dtype, np.floating):
        raise StoreError(f"{path} has dtype {array.dtype}: activations must be floating point")
    probe = np.asarray(array[: min(len(array), 100_000)], dtype=np.float32)
    if not np.isfinite(probe).all():
        raise StoreError(f"{path} contains NaN or infinite values")
    mean_norm = float(np.linalg.norm(probe, axis=1).mean())
    if mean_norm == 0:
        raise StoreError(f"{path} is all zeros")
    scale = math.sqrt(array.shape[1]) / mean_norm
    return ActivationStore([array], [None], scale, {"source_npy": str(path)}, path)


def open_store(path: str | Path) -> ActivationStore:
    """Open a run directory, its activations/ directory, or a plain [N, d] .npy."""
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise StoreError(f"{path} does not exist")
        return _load_npy(path)
    directory = activations_dir(path)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        hint = "the harvest did not finish: run `monosemantic harvest` again to resume" if directory.is_dir() else "no such store"
        layers = sorted(path.glob("activations-layer*/" + MANIFEST))
        if layers:   # `harvest --layers` wrote one store per layer and no RUN/activations
            names = ", ".join(str(m.parent) for m in layers)
            hint = f"this run has per-layer stores, pick one with --activations: {names}"
        raise StoreError(f"{directory} is not a complete activation store ({hint})")
    try:
        manifest = atomic.read_json(manifest_path)
        shards, rows = [], []
        for i, expected in enumerate(manifest["shard_counts"]):
            data_path, rows_path, _ = shard_paths(directory, i)
            shard = np.load(data_path, mmap_mode="r")
            if shard.shape != (expected, manifest["d"]):
                raise StoreError(f"{data_path} has shape {shard.shape}, manifest says ({expected}, {manifest['d']})")
            shards.append(shard)
            rows.append(np.load(rows_path, mmap_mode="r"))
    except (KeyError, ValueError, OSError) as e:
        raise StoreError(f"{directory} is a damaged activation store ({type(e).__name__}: {e}); harvest it again") from e
    return ActivationStore(shards, rows, float(manifest["norm_scale"]), manifest, directory)
