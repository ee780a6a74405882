"""`monosemantic harvest RUN`: corpus -> tokens -> residual-stream activation store."""

from __future__ import annotations

import argparse

from ..activations.run import DEFAULT_CTX_LEN, DEFAULT_TOKENS
from .launch import add_nproc_argument, launch, should_launch


def add_harvest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="embedded",
                        help="'embedded' (SmolLM2-135M, offline), 'gemma3-270m', a .gguf file, a model directory or a Hugging Face id")
    parser.add_argument("--layer", type=int, default=None, help="residual stream after this block (default: the middle layer)")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, help=f"tokens to harvest (default {DEFAULT_TOKENS:,})")
    parser.add_argument("--ctx-len", type=int, default=DEFAULT_CTX_LEN, help=f"tokens per context incl. the BOS-like token (default {DEFAULT_CTX_LEN})")
    parser.add_argument("--inputs", nargs="+", default=None, metavar="PATH",
                        help="text/JSONL files or directories instead of the embedded corpus")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="model dtype; auto picks the faster one on this CPU (default auto)")
    parser.add_argument("--seed", type=int, default=0, help="corpus shuffling seed (default 0)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "harvest", help="build the corpus and harvest activations into RUN/activations",
        description="Build the corpus, pack it into contexts and harvest residual-stream activations. "
        "Killed at any moment, the same command resumes.",
    )
    parser.add_argument("run", help="run directory (created if missing)")
    add_harvest_arguments(parser)
    parser.add_argument("--layers", type=_layer_list, default=None, metavar="L1,L2,...",
                        help="several layers from one forward pass (it stops after the deepest): one store per layer, "
                        "RUN/activations-layerL (instead of --layer)")
    parser.add_argument("--force", action="store_true", help="discard this run's tokens and activations and start again")
    add_nproc_argument(parser, "harvest")
    parser.set_defaults(func=_harvest)


def _harvest(args: argparse.Namespace) -> int:
    from ..activations.run import harvest_run
    from ..distributed import init_world

    if should_launch(args):
        return launch(args.nproc, args.argv, resume_hint="run the same command again to continue from the shards already written")
    world = init_world(args.backend)
    manifest = harvest_run(
        args.run, model=args.model, layer=args.layer, n_tokens=args.tokens, ctx_len=args.ctx_len,
        inputs=args.inputs, dtype=args.dtype, seed=args.seed, force=args.force, layers=args.layers, world=world,
    )
    if not world.is_main:
        return 0
    if args.layers:
        from ..activations.run import layer_store

        for layer in sorted(set(args.layers)):
            print(f"harvested layer {layer} into {layer_store(args.run, layer)} (train on it: --activations {layer_store(args.run, layer)})")
        return 0
    print(f"harvested {manifest['count']:,} activations of {manifest['model']} layer {manifest['layer']} "
          f"into {args.run}/activations (inspect: monosemantic store info {args.run})")
    return 0


def _layer_list(text: str) -> list[int]:
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers takes comma-separated layer numbers, e.g. 6,15,24; got {text!r}") from None
    if not layers:
        raise argparse.ArgumentTypeError("--layers needs at least one layer")
    return layers
