"""Checkpoints of a feature-sharded run: one file per rank, reloadable on any number
of ranks (or by one process).

    checkpoints/sharded-step-000000200/rank-00000.pt   rank 0's slice of every tensor
    checkpoints/sharded-step-000000200/rank-00001.pt
    checkpoints/sharded.json                           the last complete step (commit point)

Each file holds the single-process checkpoint format with every per-latent tensor
(weights, Adam moments, steps-since-fired) cut to the rank's latents [lo, hi). A
loader for latents [lo', hi') takes from each old file the overlap, so resharding
N -> M is reading; [0, n) gives exactly a single-process checkpoint. sharded.json is
written only after every rank's file is complete: a job killed mid-save resumes
from the step before. Loaded with weights_only=True: no code runs from these files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .. import atomic
from ..distributed import World
from ..errors import CheckpointError

MARKER = "sharded.json"
# Which axis of each tensor runs over latents (the rest are replicated on every rank).
SHARD_AXIS = {"W_enc": 1, "W_dec": 0, "b_enc": 0, "log_threshold": 0}


def shard_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """Latents [lo, hi) of `rank`: contiguous, sizes differing by at most one."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def param_names(sae) -> list[str]:
    """Parameter names in the optimiser's index order."""
    names = {id(p): name for name, p in sae.named_parameters()}
    return [names[id(p)] for group in sae.param_groups() for p in group["params"]]


def save_sharded(directory: Path, state: dict, world: World, lo: int, hi: int, local_sae,
                 shard: tuple[int, int] | None = None, writes: bool = True) -> Path:
    """Called by every rank of `world`. `shard` = (this rank's shard, the number of
    shards), by default (rank, world size); on a mesh only one rank per shard `writes`
    (its data group's first) and world rank 0 commits."""
    step, n = int(state["step"]), int(state["sae_config"]["n_latents"])
    index, shards = shard or (world.rank, world.size)
    sub = directory / f"sharded-step-{step:09d}"
    piece = {**state, "range": [lo, hi], "param_names": param_names(local_sae)}
    if writes:
        atomic.write_with(sub / f"rank-{index:05d}.pt", lambda tmp: torch.save(piece, tmp))
    world.barrier()
    marker_path = directory / MARKER
    if world.is_main:
        previous = atomic.read_json(marker_path)["dir"] if marker_path.is_file() else None
        for stale in sub.glob("rank-*.pt"):  # left by an earlier layout (other F) of the same step
            if int(stale.stem.split("-")[1]) >= shards:
                stale.unlink()
        marker = {"step": step, "world_size": shards, "n_latents": n, "dir": sub.name,
                  "ranges": [list(shard_range(n, r, shards)) for r in range(shards)]}
        atomic.write_json(marker_path, marker)  # the commit point
        for old in directory.glob("sharded-step-*"):
            if old.name not in (sub.name, previous):
                shutil.rmtree(old, ignore_errors=True)
        for name in ("latest.pt", "previous.pt"):  # a single-process checkpoint is now older
            (directory / name).unlink(missing_ok=True)
    world.barrier()
    return marker_path


def drop_sharded(directory: Path) -> None:
    """After a single-process checkpoint was written: the sharded one is older."""
    (directory / MARKER).unlink(missing_ok=True)
    for old in directory.glob("sharded-step-*"):
        shutil.rmtree(old, ignore_errors=True)


def read_marker(directory: Path) -> dict | None:
    path = directory / MARKER
    if not path.is_file():
        return None
    try:
        return atomic.read_json(path)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is damaged ({e}); use --force to start again") from e


def _load_piece(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged or foreign file
        raise CheckpointError(f"sharded checkpoint file {path} is unreadable ({type(e).__name__}); use --force to start again") from e


def _cut(pieces: list[tuple[int, int, torch.Tensor]], axis: int, lo: int, hi: int) -> torch.Tensor:
    """Latents [lo, hi) along `axis` from pieces covering [a, b), in the pieces' memory
    layout: W_enc is stored transposed (W_decᵀ's layout) and the fused Adam steps a
    moment with the layout of its parameter only (a row-major moment of a
    column-major W_enc was measured to diverge within 20 steps)."""
    first = pieces[0][2]
    if first.dim() == 2 and not first.is_contiguous() and first.t().is_contiguous():
        return _cut([(a, b, t.t()) for a, b, t in pieces], 1 - axis, lo, hi).t()
    parts = []
    for a, b, tensor in pieces:
        s, e = max(a, lo), min(b, hi)
        if s < e:
            parts.append(tensor.narrow(axis, s - a, e - s))
    return torch.cat(parts, dim=axis).clone()


def load_sharded(directory: Path, lo: int, hi: int, local_sae=None) -> dict:
    """The checkpoint state for latents [lo, hi), from a sharded checkpoint (any
    number of ranks) or, without one, from a single-process latest.pt."""
    marker = read_marker(directory)
    if marker is None:
        from .checkpoint import load_checkpoint

        full = load_checkpoint(directory)
        n = int(full["sae_config"]["n_latents"])
        files = [((0, n), full | {"param_names": param_names(local_sae)})]
    else:
        sub = directory / marker["dir"]
        files = []
        for rank, (a, b) in enumerate(marker["ranges"]):
            if a < hi and b > lo:
                path = sub / f"rank-{rank:05d}.pt"
                if not path.is_file():
                    raise CheckpointError(f"{path} is missing: the sharded checkpoint of step {marker['step']} is incomplete; use --force to start again")
                files.append(((a, b), _load_piece(path)))
    first = files[0][1]

    def cut(get, axis: int | None) -> torch.Tensor:
        return get(first) if axis is None else _cut([(a, b, get(p)) for (a, b), p in files], axis, lo, hi)

    state = {k: v for k, v in first.items() if k not in ("sae", "optimizer", "dead", "range", "param_names")}
    state["sae"] = {name: cut(lambda p, name=name: p["sae"][name], SHARD_AXIS.get(name)) for name in first["sae"]}
    names = first["param_names"]
    opt_state = {}
    for index, entry in first["optimizer"]["state"].items():
        axis = SHARD_AXIS.get(names[int(index)])
        opt_state[index] = {
            key: cut(lambda p, i=index, key=key: p["optimizer"]["state"][i][key], axis if torch.is_tensor(value) and value.ndim > 0 else None)
            for key, value in entry.items()
        }
    state["optimizer"] = {"state": opt_state, "param_groups": first["optimizer"]["param_groups"]}
    state["dead"] = {"window": first["dead"]["window"], "since_fired": cut(lambda p: p["dead"]["since_fired"], 0)}
    return state
