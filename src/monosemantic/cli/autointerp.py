"""`monosemantic explain RUN`: explain and score features (or neurons) into
RUN/features.db; `monosemantic compare-neurons RUN`: SAE features vs neurons."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain and score features of RUN/features.db (autointerp)",
                       description="Sample features, explain each from half of its top and interval examples, score the "
                       "explanation on the other half plus non-activating text, store both in RUN/features.db. Model "
                       "replies are cached in RUN/autointerp/cache.sqlite: the same command resumes and re-runs cost nothing.")
    p.add_argument("run", help="run directory with features.db")
    p.add_argument("--features", default="random:200", help="live (all of them), random:N, stratified:N (by density) or ids 1,2,3 (default random:200)")
    p.add_argument("--kind", choices=("feature", "neuron"), default="feature", help="SAE features or the MLP neurons (built with --neurons)")
    p.add_argument("--explainer", choices=("llm", "tokens"), default="llm", help="llm, or the model-free most-frequent-tokens baseline")
    p.add_argument("--scorer", default="all", help="all, or some of rubric,detection,fuzzing,simulation (comma-separated)")
    p.add_argument("--client", choices=("local", "openai"), default="local", help="local transformers model (answers the scorers' digits by constrained choice) or an OpenAI-compatible server "
                   "(vLLM, llama.cpp, Ollama, hosted)")
    p.add_argument("--model", default=None, help="local: model spec (default embedded); openai: model name (default gpt-4o-mini)")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (default $OPENAI_BASE_URL)")
    p.add_argument("--api-key", default=None, help="API key (default $OPENAI_API_KEY)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (openai client)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds for a whole request, reply included (openai client)")
    p.add_argument("--seed", type=int, default=0, help="feature sampling seed")
    p.add_argument("--per-level", type=int, default=None, metavar="N",
                   help="score at most N held-out examples per activation level (default: all stored; lower it for a cheap run)")
    p.add_argument("--negatives", type=int, default=None, metavar="N", help="score at most N non-activating examples (default: all stored)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    p.set_defaults(func=_explain)

    c = sub.add_parser("compare-neurons", help="SAE features vs MLP neurons: table and plot in RUN/autointerp/",
                       description="Bootstrap 95 % CIs of each scorer's mean for features and neurons, and of their difference.")
    c.add_argument("run", help="run directory with features.db holding scores of both kinds")
    c.add_argument("--no-plot", action="store_true", help="table only")
    c.set_defaults(func=_compare)


def _client(args):
    from pathlib import Path

    from ..autointerp.clients import LocalClient, OpenAIClient, OpenAIConfig

    from ..run_config import check_run_dir

    run = Path(args.run)
    run = run.parent if run.suffix == ".db" else check_run_dir(run)
    cache = None if args.no_cache else run / "autointerp" / "cache.sqlite"
    if args.client == "local":
        return LocalClient(args.model or "embedded", cache=cache)
    return OpenAIClient(OpenAIConfig(base_url=args.base_url, api_key=args.api_key, model=args.model or "gpt-4o-mini",
                                     concurrency=args.concurrency, timeout=args.timeout, cache=cache))


def _explain(args: argparse.Namespace) -> int:
    import numpy as np

    from ..autointerp import bootstrap_ci, explain_run

    client = _client(args)
    r = explain_run(args.run, features=args.features, scorers=args.scorer, explainer=args.explainer, client=client,
                    kind=args.kind, seed=args.seed, parallel_features=max(1, min(args.concurrency, 8)) if args.client == "openai" else 2,
                    progress=True, per_level=args.per_level, negatives=args.negatives)
    print(f"{r.kind}s: {r.selected} selected, {r.done} tried now, {r.skipped} already done, "
          f"{len({f['id'] for f in r.failed})} with failures "
          f"({r.seconds:.0f} s, explainer {r.explainer}, client {client.name})")
    for name, vals in r.scores.items():
        lo, hi = bootstrap_ci(vals)
        print(f"  {name:<10} mean {np.mean(vals):.3f}  95% CI [{lo:.3f}, {hi:.3f}]  n={len(vals)}")
    u = r.usage
    if u:
        print(f"  requests {u['requests']} (cache hits {u['cache_hits']}, retries {u['retries']}, gave up {u['failures']}); "
              f"tokens {u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} completion")
    for f in r.failed[:5]:
        print(f"  {r.kind} {f['id']}: {f['reason']}")
    if len(r.failed) > 5:
        print(f"  ... {len(r.failed) - 5} more in {r.run}/autointerp/log.jsonl")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ..autointerp import compare_neurons

    c = compare_neurons(args.run, plot=not args.no_plot)
    print(c.table.read_text(), end="")
    print(f"written to {c.table}" + (f" and {c.plot}" if c.plot else ""))
    return 0
