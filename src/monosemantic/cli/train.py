"""`monosemantic train RUN`: train an SAE on the run's activation store."""

from __future__ import annotations

import argparse

from ..train.config import TrainConfig
from .launch import add_nproc_argument, launch, should_launch

ARCHITECTURES = ["relu", "topk", "batchtopk", "jumprelu"]
DEFAULT_LATENTS = 4096


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    g = parser.add_argument_group("SAE")
    g.add_argument("--architecture", default="relu", choices=ARCHITECTURES, help="SAE architecture (default relu, the paper's recipe)")
    g.add_argument("--latents", type=int, default=DEFAULT_LATENTS, help=f"dictionary size (default {DEFAULT_LATENTS})")
    g.add_argument("--k", type=int, default=None, help="topk/batchtopk: active latents per token (default 32)")
    g.add_argument("--l1", type=float, default=None, help="relu: sparsity coefficient λ (default 3)")
    g.add_argument("--l0-coefficient", type=float, default=None, help="jumprelu: L0 penalty coefficient")
    g = parser.add_argument_group("training")
    g.add_argument("--train-tokens", type=int, default=d.n_tokens, help=f"training tokens; epochs over the store as needed (default {d.n_tokens:,})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"rows per step (default {d.batch_size})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam peak learning rate (default {d.lr:g})")
    g.add_argument("--train-dtype", default=d.dtype, choices=["float32", "bfloat16", "auto"], help=f"matmul precision (default {d.dtype}: bfloat16 autocast for relu/topk/batchtopk on a CPU with native bf16, where it was measured faster at float32's loss; float32 for jumprelu and elsewhere)")
    g.add_argument("--train-seed", type=int, default=d.seed, help="initialisation and data-order seed (default 0)")
    g.add_argument("--dead-window", type=int, default=d.dead_window_tokens, help="tokens without firing before a latent counts as dead (default: min(10M, tokens/4))")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help=f"steps between checkpoints (default {d.checkpoint_every})")
    g.add_argument("--log-every", type=int, default=d.log_every, help=f"steps between metrics.jsonl lines (default {d.log_every})")


def configs_from_args(args: argparse.Namespace) -> tuple[dict, TrainConfig]:
    sae_cfg = {"architecture": args.architecture, "n_latents": args.latents}
    for flag, key in (("k", "k"), ("l1", "l1_coefficient"), ("l0_coefficient", "l0_coefficient")):
        if getattr(args, flag) is not None:
            sae_cfg[key] = getattr(args, flag)
    cfg = TrainConfig(n_tokens=args.train_tokens, batch_size=args.batch_size, lr=args.lr, dtype=args.train_dtype,
                      seed=args.train_seed, dead_window_tokens=args.dead_window,
                      checkpoint_every=args.checkpoint_every, log_every=args.log_every)
    return sae_cfg, cfg


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train", help="train an SAE on RUN/activations (or --activations x.npy) into RUN/sae",
        description="Train a sparse autoencoder. Progress shows loss, L0, FVE and the dead fraction; "
        "metrics go to RUN/metrics.jsonl, checkpoints to RUN/checkpoints. Killed, it continues with --resume.",
    )
    parser.add_argument("run", help="run directory (holds activations/ unless --activations is given)")
    parser.add_argument("--activations", default=None, metavar="PATH", help="a store directory or an [N, d] .npy instead of RUN/activations")
    add_train_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from RUN/checkpoints with the same data order")
    parser.add_argument("--force", action="store_true", help="discard this run's SAE, checkpoints and metrics and train again")
    add_nproc_argument(parser, "train")
    parser.add_argument("--parallel", default="data", choices=["data", "feature"],
                        help="with several ranks: data (each rank a slice of every batch) or feature (the dictionary split "
                        "by latents, for relu/topk/batchtopk; docs/distributed.md). Default data")
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from ..distributed import init_world
    from ..train import train_run

    if should_launch(args):
        return launch(args.nproc, args.argv)
    world = init_world()
    sae_cfg, cfg = configs_from_args(args)
    result = train_run(args.run, sae_cfg, cfg, activations=args.activations, resume=args.resume, force=args.force,
                       world=world, parallel=args.parallel)
    if not world.is_main:
        return 0
    if result is None:
        print(f"{args.run}/sae is already trained with these settings (use --force to train again)")
        return 0
    m = result.last_metrics
    print(f"trained {sae_cfg['architecture']} SAE, {sae_cfg['n_latents']} latents, {result.tokens:,} tokens in {result.seconds:.0f} s: "
          f"FVE {m.get('fve', float('nan')):.3f}, L0 {m.get('l0', float('nan')):.1f}, dead {m.get('dead_fraction', float('nan')):.1%} "
          f"(window {m.get('dead_window_tokens', 0):,} tokens) -> {args.run}/sae (evaluate: monosemantic eval {args.run})")
    return 0
