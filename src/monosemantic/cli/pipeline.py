"""`monosemantic pipeline RUN`: the main job, corpus -> harvest -> train -> eval ->
features -> report, each stage resumed or skipped when already done."""

from __future__ import annotations

import argparse

from .harvest import add_harvest_arguments
from .train import add_train_arguments


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pipeline", help="run every stage on RUN (the README's main job)",
        description="Build the corpus, harvest activations, train the SAE, evaluate it, build the feature database "
        "and the report. Killed at any moment, the same command resumes where it stopped.",
    )
    parser.add_argument("run", help="run directory (created if missing)")
    add_harvest_arguments(parser)
    add_train_arguments(parser)
    parser.add_argument("--eval-tokens", type=int, default=50_000, help="held-out activations for the eval (default 50,000)")
    parser.add_argument("--feature-tokens", type=int, default=None, help="tokens streamed into the feature database (default: the features command's)")
    parser.add_argument("--no-features", action="store_true", help="stop after the eval (no feature database, no report)")
    parser.add_argument("--force", action="store_true", help="discard everything in RUN and start again")
    parser.set_defaults(func=_pipeline)


def _pipeline(args: argparse.Namespace) -> int:
    from ..pipeline import PipelineSettings, run_pipeline
    from .train import configs_from_args

    sae_cfg, train_cfg = configs_from_args(args)
    settings = PipelineSettings(
        model=args.model, layer=args.layer, n_tokens=args.tokens, ctx_len=args.ctx_len, inputs=args.inputs,
        dtype=args.dtype, seed=args.seed, sae=sae_cfg, train=train_cfg, eval_tokens=args.eval_tokens,
        feature_tokens=args.feature_tokens, features=not args.no_features,
    )
    summary = run_pipeline(args.run, settings, force=args.force)
    print(summary.text())
    return 0
