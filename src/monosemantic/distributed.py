"""The process group that `torchrun` sets up, seen by every stage as a `World`.

Without torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...) a stage runs as
one process and every collective here is the identity, so single-process code
paths never touch torch.distributed. Under torchrun the group is NCCL when CUDA is
available (each rank on `cuda:LOCAL_RANK`, `World.device`), else gloo on CPU;
`--backend` (or MONOSEMANTIC_DIST_BACKEND) overrides the choice.

Ranks compare what they are about to do before any work (`World.agree`): a rank
launched with another world size, other settings or another store is refused with
a message that names it, instead of deadlocking or mixing data."""

from __future__ import annotations

import atexit
import datetime
import os
import secrets
import sys
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
# How long rank 0 waits for the others to have read its world size before it exits
# (its exit takes down the store they read from).
ACK_TIMEOUT = datetime.timedelta(minutes=2)
BACKENDS = ("auto", "gloo", "nccl")
# Set by `--nproc`'s launcher (cli/launch.py) to its pid for the ranks it starts.
LAUNCHER_PID = "MONOSEMANTIC_LAUNCHER_PID"


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = "gloo"
    # The process group the collectives run over: None for every rank; one row or
    # column of the data x feature mesh otherwise (train/mesh.py), rank and size
    # then being within it.
    group: Any = None

    @property
    def device(self) -> torch.device:
        """Where this rank computes and communicates: cuda:LOCAL_RANK under NCCL, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier(group=self.group, **({"device_ids": [self.local_rank]} if self.backend == "nccl" else {}))

    def all_gather_object(self, obj: Any) -> list:
        if not self.distributed:
            return [obj]
        out: list = [None] * self.size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def broadcast_object(self, obj: Any = None) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, group=self.group, group_src=0)
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
            work = self._on_device(tensor)
            dist.all_reduce(work, op=reduce_op, group=self.group)
            if op == "mean":
                work.div_(self.size)
            if work is not tensor:
                tensor.copy_(work)
        return tensor

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's `tensor` (same shape on every rank), in rank order."""
        if not self.distributed:
            return [tensor]
        work = self._on_device(tensor).contiguous()
        out = [torch.empty_like(work) for _ in range(self.size)]
        dist.all_gather(out, work, group=self.group)
        return [t.to(tensor.device) for t in out]

    def _on_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` where the backend can reduce it (itself when it already is: gloo's CPU tensors)."""
        return tensor if tensor.device == self.device else tensor.to(self.device)


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
    try:  # every rank has read the probe once the agreement's all-gather is done
        world.agree(f"the contents of {probe} (every rank must see {directory} on a shared filesystem)", seen == token)
    finally:
        if world.is_main:
            probe.unlink(missing_ok=True)


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def resolve_backend(name: str | None = None) -> str:
    """gloo or nccl: `name` (--backend), else MONOSEMANTIC_DIST_BACKEND, else auto
    (NCCL when torch sees CUDA GPUs, gloo otherwise)."""
    name = name or os.environ.get("MONOSEMANTIC_DIST_BACKEND") or "auto"
    if name not in BACKENDS:
        raise DistributedError(f"the distributed backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    if name == "nccl" and not torch.cuda.is_available():
        raise DistributedError("--backend nccl needs CUDA GPUs and torch sees none here: use --backend gloo (CPU)")
    return name


def init_world(backend: str | None = None) -> World:
    """The World of this process: torchrun's (the process group is created once) or a
    single process. Every rank checks the world size it was launched with."""
    if not launched_by_torchrun():
        return World()
    die_with_launcher()
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = resolve_backend(backend)
    if backend == "nccl":  # NCCL's collectives (object ones included) use the current CUDA device
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK {local_rank} has no GPU of its own ({torch.cuda.device_count()} on this node): "
                                   "launch at most one rank per GPU (--nproc-per-node)")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # The rendezvous store, checked before the process group is built: a rank
        # launched with another WORLD_SIZE would hang in it otherwise.
        store = _rendezvous_store(rank, size)
        _check_world_size(store, rank, size)
        dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=COLLECTIVE_TIMEOUT)
        # Torn down before the interpreter exits: left to the destructors, a rank that
        # exits (a refusal) just after its peer could abort ("terminate called ...").
        atexit.register(_destroy_process_group)
    return World(rank, size, local_rank, backend)


def die_with_launcher() -> None:
    """A rank of `--nproc` is killed with its launcher: killed itself (kill -9, a
    timeout), the launcher cannot stop its ranks, which would go on harvesting or
    training with nobody to report to. Linux only (prctl); elsewhere nothing."""
    launcher = os.environ.get(LAUNCHER_PID)
    if not launcher or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(launcher):  # it died before the line above
        os._exit(1)


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _rendezvous_store(rank: int, size: int):
    """torchrun's agent store when there is one (--nproc, torchrun), else the store
    torch's env:// rendezvous builds on rank 0, but without waiting for WORLD_SIZE
    clients to connect: a rank 0 launched with a larger world size would wait there
    for ranks that never come instead of reaching the check below."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        return next(dist.rendezvous("env://", timeout=COLLECTIVE_TIMEOUT))[0]
    return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), size, is_master=rank == 0,
                         timeout=COLLECTIVE_TIMEOUT, wait_for_workers=False, multi_tenant=True)


def _check_world_size(store, rank: int, size: int) -> None:
    """Every rank publishes its WORLD_SIZE and reads rank 0's itself (rank 0 reads the
    others' up to the first that differs), then acknowledges; rank 0 leaves only
    after every rank that published has acknowledged, because its exit takes the
    store down. So each rank prints the one-line refusal, whatever the timing."""
    store.set(_SIZE_KEY.format(rank), str(size))
    theirs: dict[int, int] = {}
    for other in range(1, size) if rank == 0 else [0]:
        theirs[other] = int(store.get(_SIZE_KEY.format(other)))
        if theirs[other] != size:
            break
    store.set(_READ_KEY.format(rank), "1")
    if rank == 0:
        published = [other for other in range(1, size) if store.check([_SIZE_KEY.format(other)])]
        try:
            store.wait([_READ_KEY.format(other) for other in published], ACK_TIMEOUT)
        except RuntimeError:  # a rank died after publishing: torchrun reports it; refuse below if sizes differ
            pass
    for other, their_size in theirs.items():
        if their_size != size:
            raise DistributedError(
                f"rank {other} was launched with a world size of {their_size}, rank {rank} with {size}: "
                "launch every rank with the same --nnodes/--nproc-per-node (WORLD_SIZE)"
            )


_SIZE_KEY = "monosemantic/world_size/{}"
_READ_KEY = "monosemantic/world_size_read/{}"


def rank_prefix() -> str:
    """'rank R: ' under torchrun with several ranks, else '' (for one-line errors)."""
    if launched_by_torchrun() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"rank {os.environ['RANK']}: "
    return ""
