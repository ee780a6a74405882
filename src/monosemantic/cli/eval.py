"""`monosemantic eval RUN`: held-out reconstruction, density and spliced-loss metrics."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate RUN/sae on held-out data; writes RUN/eval.json",
                            description="Evaluate the run's SAE on held-out data and print a table.")
    parser.add_argument("run", help="run directory with activations/ and sae/")
    parser.add_argument("--tokens", type=int, default=50_000, help="held-out activations for reconstruction metrics (default 50,000)")
    parser.add_argument("--contexts", type=int, default=48, help="held-out contexts for the spliced loss (default 48)")
    parser.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from ..evals.run import evaluate_run, format_table

    result = evaluate_run(args.run, n_tokens=args.tokens, n_contexts=args.contexts)
    print(format_table(result))
    print(f"written to {args.run}/eval.json")
    return 0
