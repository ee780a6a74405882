"""`monosemantic train RUN`: train an SAE on the run's activation store."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..errors import ConfigError
from ..sae import ARCHITECTURES
from ..train import train_run
from ..train.config import TrainConfig
from .launch import add_nproc_argument, add_parallel_argument, check_splits, launch, should_launch

DEFAULT_LATENTS = 4096


def sae_options() -> dict[str, tuple[dataclasses.Field, list[str]]]:
    """Every SAE setting with a CLI flag (an `option` field of any registered config
    class) -> (field, architectures whose class `uses` it), in declaration order."""
    out: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for cls in ARCHITECTURES.values():
        for f in dataclasses.fields(cls.config_class):
            if "help" in f.metadata and f.name not in out:
                out[f.name] = (f, [name for name, c in ARCHITECTURES.items() if f.name in c.uses])
    return out


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _parser(f: dataclasses.Field):
    if f.metadata.get("parse"):
        return f.metadata["parse"]
    return int if str(f.type).startswith("int") else float


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    g = parser.add_argument_group("SAE")
    g.add_argument("--architecture", default="relu", choices=list(ARCHITECTURES), help="SAE architecture (default relu, the paper's recipe)")
    g.add_argument("--latents", type=int, default=DEFAULT_LATENTS, help=f"dictionary size (default {DEFAULT_LATENTS})")
    for name, (f, users) in sae_options().items():
        default = "" if f.default in (None, dataclasses.MISSING) else f" (default {str(f.default).lower()})" if isinstance(f.default, bool) else f" (default {f.default:g})" if isinstance(f.default, (int, float)) else f" (default {f.default})"
        g.add_argument(_flag(f), dest=f"sae_{name}", type=_parser(f), default=None, metavar=f.name.upper(),
                       help=f"{'/'.join(users) or 'any'}: {f.metadata['help']}{default}")
    g = parser.add_argument_group("training")
    g.add_argument("--train-tokens", type=int, default=d.n_tokens, help=f"training tokens; epochs over the store as needed (default {d.n_tokens:,})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"rows per step (default {d.batch_size})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam peak learning rate (default {d.lr:g}; " + ", ".join(f"{a} trains at {c.LR_SCALE:g}x it" for a, c in ARCHITECTURES.items() if getattr(c, "LR_SCALE", 1) != 1) + ": docs/training.md)")
    g.add_argument("--train-dtype", default=d.dtype, choices=["float32", "bfloat16", "auto"], help=f"matmul precision (default {d.dtype}: bfloat16 autocast for relu/topk/batchtopk on a CPU with native bf16, where it was measured faster at float32's loss; float32 for jumprelu and elsewhere)")
    g.add_argument("--train-seed", type=int, default=d.seed, help="initialisation and data-order seed (default 0)")
    g.add_argument("--dead-window", type=int, default=d.dead_window_tokens, help="tokens without firing before a latent counts as dead (default: min(10M, tokens/4))")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help=f"steps between checkpoints (default {d.checkpoint_every})")
    g.add_argument("--log-every", type=int, default=d.log_every, help=f"steps between metrics.jsonl lines (default {d.log_every})")


def configs_from_args(args: argparse.Namespace) -> tuple[dict, TrainConfig]:
    sae_cfg = {"architecture": args.architecture, "n_latents": args.latents}
    known = {f.name for f in dataclasses.fields(ARCHITECTURES[args.architecture].config_class)}
    for name, (f, _) in sae_options().items():
        value = getattr(args, f"sae_{name}")
        if value is None:
            continue
        if name not in known:
            raise ConfigError(f"{_flag(f)} is not a setting of {args.architecture}")
        sae_cfg[name] = value
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
    parser.add_argument("--resume", action="store_true", help="continue from RUN/checkpoints with the same data order and the checkpoint's own training knobs (lr scales, auto dtype, ...; docs/training.md)")
    parser.add_argument("--force", action="store_true", help="discard this run's SAE, checkpoints and metrics and train again")
    add_nproc_argument(parser, "train")
    add_parallel_argument(parser)
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from ..distributed import init_world
    from ..train.run import training_warnings

    if should_launch(args):
        check_splits(args)
        return launch(args.nproc, args.argv)
    world = init_world(args.backend)
    sae_cfg, cfg = configs_from_args(args)
    result = train_run(args.run, sae_cfg, cfg, activations=args.activations, resume=args.resume, force=args.force,
                       world=world, parallel=args.parallel, feature_ranks=args.feature_ranks)
    if not world.is_main:
        return 0
    if result is None:
        print(f"{args.run}/sae is already trained with these settings (use --force to train again)")
        return 0
    m = result.last_metrics
    print(f"trained {sae_cfg['architecture']} SAE, {sae_cfg['n_latents']} latents, {result.tokens:,} tokens in {result.seconds:.0f} s: "
          f"FVE {m.get('fve', float('nan')):.3f}, L0 {m.get('l0', float('nan')):.1f}, dead {m.get('dead_fraction', float('nan')):.1%} "
          f"(window {m.get('dead_window_tokens', 0):,} tokens) -> {args.run}/sae (evaluate: monosemantic eval {args.run})")
    for warning in training_warnings(m):
        print(f"monosemantic: warning: {warning}", file=sys.stderr)
    return 0
