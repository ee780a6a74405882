"""`monosemantic features RUN`: build RUN/features.db; `monosemantic report RUN`: the
static HTML report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "features", help="build the feature database RUN/features.db",
        description="Stream held-out text through the model and RUN/sae and record, per feature, density, top and "
        "interval examples, histogram, logit effects and decoder neighbours. Killed at any moment, the same command resumes.",
    )
    parser.add_argument("run", help="run directory with tokens/, activations/ and sae/")
    parser.add_argument("--tokens", type=int, default=None, help="tokens to stream, held-out contexts first (default: every context of the store)")
    parser.add_argument("--neurons", action="store_true", help="also record the MLP neurons of the same layer (baseline for autointerp)")
    parser.add_argument("--top-k", type=int, default=20, help="top-activating contexts kept per feature (default 20)")
    parser.add_argument("--force", action="store_true", help="discard an existing database or unfinished build and start again")
    parser.set_defaults(func=_features)

    report = sub.add_parser("report", help="write the static HTML report RUN/report/index.html",
                            description="Plots (training curves, density, L0), the eval table and pages for the most and least dense features.")
    report.add_argument("run", help="run directory")
    report.set_defaults(func=_report)


def _features(args: argparse.Namespace) -> int:
    from ..features import build_feature_db

    result = build_feature_db(args.run, n_tokens=args.tokens, neurons=args.neurons, top_k=args.top_k, force=args.force)
    if result.reused:
        print(f"{result.path} is up to date (use --force to rebuild)")
        return 0
    what = f"{result.n_features:,} features" + (f" and {result.n_neurons:,} neurons" if result.n_neurons else "")
    print(f"{what} over {result.n_tokens:,} tokens ({result.tokens_per_second:,.0f} tokens/s) written to {result.path} "
          f"({result.bytes / 1e6:.1f} MB, {result.bytes_per_feature / 1e3:.1f} kB per feature)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..report import build_report

    index = build_report(args.run)
    print(f"report written to {index}")
    return 0
