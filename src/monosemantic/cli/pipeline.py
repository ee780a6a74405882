"""`monosemantic pipeline RUN`: the main job, corpus -> harvest -> train -> eval ->
features -> report, each stage resumed or skipped when already done."""

from __future__ import annotations

import argparse
import os
import time

from .harvest import add_harvest_arguments
from .launch import add_nproc_argument, add_parallel_argument, check_splits, launch, should_launch
from .train import add_train_arguments

_LAUNCHED = "MONOSEMANTIC_PIPELINE_LAUNCHER"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pipeline", help="run every stage on RUN (the README's main job)",
        description="Build the corpus, harvest activations, train the SAE, evaluate it, build the feature database "
        "and the report. Killed at any moment, the same command resumes where it stopped. With --nproc N the "
        "harvest and train stages run as N ranks (as harvest|train --nproc N do) and the other stages in one process.",
    )
    parser.add_argument("run", help="run directory (created if missing)")
    add_harvest_arguments(parser)
    add_train_arguments(parser)
    parser.add_argument("--eval-tokens", type=int, default=50_000, help="held-out activations for the eval (default 50,000)")
    parser.add_argument("--feature-tokens", type=int, default=None, help="tokens streamed into the feature database (default: the features command's)")
    parser.add_argument("--no-features", action="store_true", help="stop after the eval (no feature database, no report)")
    parser.add_argument("--force", action="store_true", help="discard everything in RUN and start again")
    add_nproc_argument(parser, "the harvest and train stages")
    add_parallel_argument(parser)
    parser.set_defaults(func=_pipeline)


def _pipeline(args: argparse.Namespace) -> int:
    from ..distributed import init_world
    from ..pipeline import PipelineSettings, discard_run, run_distributed_stages, run_pipeline
    from .train import configs_from_args

    sae_cfg, train_cfg = configs_from_args(args)
    settings = PipelineSettings(
        model=args.model, layer=args.layer, n_tokens=args.tokens, ctx_len=args.ctx_len, inputs=args.inputs,
        dtype=args.dtype, seed=args.seed, sae=sae_cfg, train=train_cfg, eval_tokens=args.eval_tokens,
        feature_tokens=args.feature_tokens, features=not args.no_features,
    )
    earlier = None
    if should_launch(args):  # this process launches the ranks, then runs the other stages itself
        check_splits(args)
        train_cfg.validate()
        if args.force:  # here, once: neither the ranks nor the stages after them discard anything
            discard_run(args.run)
        start = time.perf_counter()
        os.environ[_LAUNCHED] = "1"  # the ranks' own "what next" line would only repeat what this process does
        launch(args.nproc, args.argv, drop=("--force",),
               resume_hint="run the same command again (without --force) to continue from the last complete checkpoint")
        earlier = {f"harvest + train on {args.nproc} ranks": time.perf_counter() - start}
        print(f"[harvest + train on {args.nproc} ranks] done in {earlier[next(iter(earlier))]:.0f} s", flush=True)
    else:
        world = init_world(args.backend)
        if world.distributed:  # a rank under torchrun: the stages that run on ranks, then back to the launcher
            run_distributed_stages(args.run, settings, world, args.parallel, feature_ranks=args.feature_ranks, force=args.force)
            if world.is_main and not os.environ.get(_LAUNCHED):
                print(f"harvest and train done on {world.size} ranks; eval, features and report run in one process: "
                      f"monosemantic pipeline {args.run} (same flags, without torchrun)")
            return 0
    summary = run_pipeline(args.run, settings, force=args.force and earlier is None, earlier=earlier)
    print(summary.text())
    return 0
