"""`--nproc N`: run the same command as N local ranks under torchrun.

The launch is torchrun's own (its argument parser and `elastic_launch`, what the
`torchrun` script calls), with the rendezvous `--standalone` sets up (c10d on a free local port); only the
failure report differs: torchrun's is a page of traceback, ours one line naming the
rank that died first. Multi-node jobs call torchrun directly (docs/distributed.md)."""

from __future__ import annotations

import argparse
import os
import sys
import uuid

import torch

from ..distributed import BACKENDS, LAUNCHER_PID, launched_by_torchrun, resolve_backend
from ..errors import ConfigError, DistributedError


def add_nproc_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help=f"{what} as N local processes under torchrun (default 1: one process)")
    parser.add_argument("--backend", default=None, choices=BACKENDS,
                        help="torch.distributed backend with several ranks: nccl (each rank on cuda:LOCAL_RANK) or "
                        "gloo (CPU); default auto: nccl when torch sees CUDA GPUs, else gloo")


def add_parallel_argument(parser: argparse.ArgumentParser) -> None:
    """--parallel, and --feature-ranks for the data x feature mesh."""
    parser.add_argument("--parallel", default="data", choices=["data", "feature", "mesh"],
                        help="with several ranks: data (each rank a slice of every batch), feature (the dictionary split "
                        "by latents, for relu/topk/batchtopk/jumprelu) or mesh (both: --feature-ranks F ranks per "
                        "dictionary, N/F data groups; docs/distributed.md). Default data")
    parser.add_argument("--feature-ranks", type=int, default=None, metavar="F",
                        help="with --parallel mesh: how many ranks split each copy of the dictionary (a divisor of --nproc)")


def check_splits(args: argparse.Namespace) -> None:
    """What the launcher can refuse in one line before any rank starts."""
    from ..train.distributed import check_batch_splits, check_mesh_splits, check_scheme_flags

    feature_ranks = getattr(args, "feature_ranks", None)
    check_scheme_flags(args.parallel, feature_ranks)
    if args.parallel == "data":
        check_batch_splits(args.batch_size, args.nproc)
    else:
        check_mesh_splits(args.batch_size, args.nproc, feature_ranks)
    if args.parallel != "data" and resolve_backend(getattr(args, "backend", None)) == "nccl":  # train/sharded*.py compute on the CPU
        raise DistributedError(f"--parallel {args.parallel} runs on CPU tensors (gloo) for now, not NCCL: "
                               "add --backend gloo, or use --parallel data on GPUs")


def strip_nproc(argv: list[str], flags: tuple[str, ...] = ()) -> list[str]:
    """`argv` without --nproc N (and without each switch in `flags`, e.g. --force)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc=") and arg not in flags:
            out.append(arg)
    return out


def should_launch(args: argparse.Namespace) -> bool:
    """True when this process is the launcher (not yet a torchrun rank)."""
    if args.nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc == 1 or launched_by_torchrun():
        return False
    if resolve_backend(getattr(args, "backend", None)) == "nccl" and args.nproc > torch.cuda.device_count():
        raise DistributedError(f"--nproc {args.nproc} with NCCL needs a GPU per rank and torch sees {torch.cuda.device_count()}: "
                               "use fewer ranks, or --backend gloo")
    return True


RESUME_HINT = "run the same command again (train: with --resume) to continue from the last complete checkpoint"


def launch(nproc: int, argv: list[str], drop: tuple[str, ...] = (), resume_hint: str = RESUME_HINT) -> int:
    """Run `monosemantic ARGV` (without --nproc, nor the switches in `drop`) as `nproc`
    ranks; 0 when all succeed."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, get_args_parser

    threads = max(1, (os.cpu_count() or 1) // nproc)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # torchrun's own default is 1 and a banner
    os.environ[LAUNCHER_PID] = str(os.getpid())  # each rank dies with this process (distributed.die_with_launcher)
    torchrun_args = get_args_parser().parse_args(
        ["--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", "--rdzv-id", uuid.uuid4().hex, "--nnodes", "1", "--nproc-per-node", str(nproc), "--max-restarts", "0",
         "--monitor-interval", "0.5", "-m", "monosemantic", *strip_nproc(argv, drop)]
    )
    config, cmd, cmd_args = config_from_args(torchrun_args)
    try:
        elastic_launch(config, cmd)(*cmd_args)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        how = f"killed by {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        raise DistributedError(
            f"rank {rank} of {nproc} failed ({how}; its own message, if any, is above) and the job was stopped: {resume_hint}"
        ) from None
    sys.stdout.flush()
    return 0
