"""The process group that `torchrun` sets up, seen by every stage as a `World`.

Without torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...) a stage runs as
one process and every collective here is the identity, so single-process code
paths never touch torch.distributed. Under torchrun the group is gloo (CPU tensors:
the whole project computes on CPU; NCCL needs the tensors on CUDA, docs/distributed.md).

Ranks compare what they are about to do before any work (`World.agree`): a rank
launched with another world size, other settings or another store is refused with
a message that names it, instead of deadlocking or mixing data."""

from __future__ import annotations

import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from . import atomic
from .errors import DistributedError

# A collective that waits longer than this means a rank hung (a dead rank is noticed
# by torchrun within a second and the job stopped): fail instead of waiting for ever.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_gather_object(self, obj: Any) -> list:
        if not self.distributed:
            return [obj]
        out: list = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any = None) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, what: str, value: Any) -> None:
        """Refuse to start unless every rank has the same `value` (settings, store,
        world size): the one-line error names the first rank that differs."""
        values = self.all_gather_object(value)
        for rank, other in enumerate(values):
            if other != values[0]:
                raise DistributedError(
                    f"rank {rank} disagrees with rank 0 on {what} ({_short(other)} vs {_short(values[0])}): "
                    "launch every rank with the same command, settings and shared run directory"
                )

    def all_reduce_(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In place over all ranks ("sum", "max", "mean"); returns the tensor."""
        if self.distributed:
            reduce_op = dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM
            dist.all_reduce(tensor, op=reduce_op)
            if op == "mean":
                tensor.div_(self.size)
        return tensor

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's `tensor` (same shape on every rank), in rank order."""
        if not self.distributed:
            return [tensor]
        out = [torch.empty_like(tensor) for _ in range(self.size)]
        dist.all_gather(out, tensor.contiguous())
        return out


def check_shared_dir(world: World, directory: Path) -> None:
    """Refuse to start unless every rank sees the directory rank 0 writes into (a
    store or checkpoints on a shared filesystem, not one local disk per node)."""
    if not world.distributed:
        return
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / ".ranks-see-this"
    token = world.broadcast_object(secrets.token_hex(8) if world.is_main else None)
    if world.is_main:
        atomic.write_bytes(probe, token.encode())
    world.barrier()
    seen = probe.read_text() if probe.is_file() else None
    world.agree(f"the contents of {probe} (every rank must see {directory} on a shared filesystem)", seen == token)
    world.barrier()
    if world.is_main:
        probe.unlink(missing_ok=True)


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_world() -> World:
    """The World of this process: torchrun's (the gloo group is created once) or a
    single process. Every rank checks the world size it was launched with."""
    if not launched_by_torchrun():
        return World()
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if not dist.is_initialized():
        # torch's own env:// rendezvous store, checked before the process group is
        # built: a rank launched with another WORLD_SIZE would hang in it otherwise.
        store, rank, size = next(dist.rendezvous("env://", timeout=COLLECTIVE_TIMEOUT))
        _check_world_size(store, rank, size)
        backend = os.environ.get("MONOSEMANTIC_DIST_BACKEND", "gloo")
        dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=COLLECTIVE_TIMEOUT)
    return World(rank, size)


def _check_world_size(store, rank: int, size: int) -> None:
    store.set(f"monosemantic/world_size/{rank}", str(size))
    others = range(1, size) if rank == 0 else [0]
    for other in others:
        theirs = int(store.get(f"monosemantic/world_size/{other}"))
        if theirs != size:
            raise DistributedError(
                f"rank {other} was launched with a world size of {theirs}, rank {rank} with {size}: "
                "launch every rank with the same --nnodes/--nproc-per-node (WORLD_SIZE)"
            )


def rank_prefix() -> str:
    """'rank R: ' under torchrun with several ranks, else '' (for one-line errors)."""
    if launched_by_torchrun() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"rank {os.environ['RANK']}: "
    return ""
