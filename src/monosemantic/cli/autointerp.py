"""`monosemantic explain RUN`: explain and score features (or neurons) with an LLM
into RUN/features.db; `monosemantic interpret RUN`: the offline scorers on features,
neurons and baselines, and the comparison table of everything scored."""

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

    c = sub.add_parser("interpret", help="offline interpretability of features vs neurons (no LLM): scores, table, plot",
                       description="Score a seeded random sample of live SAE features and MLP neurons (and, with --units, "
                       "residual / PCA / random directions) by N2G explanations (precision, recall), example-embedding AUROC "
                       "and intruder detection, and ablation sparsity, all on the same held-out text; k-sparse probing of "
                       "every family; scores and N2G explanations into RUN/features.db. Then the table of every scorer in "
                       "RUN/features.db (these and `explain`'s) per kind, with bootstrap 95 % CIs and features minus each "
                       "other kind: RUN/autointerp/compare.{md,json,png}. Killed, the same command resumes.")
    c.add_argument("run", help="run directory with sae/ and features.db built with --neurons")
    c.add_argument("--units", default="feature:200,neuron:200", help="kind:N,... of feature, neuron, residual, pca, random "
                   "(default feature:200,neuron:200)")
    c.add_argument("--seed", type=int, default=0, help="sampling seed")
    c.add_argument("--explain-contexts", type=int, default=96, help="training contexts the examples come from (default 96)")
    c.add_argument("--score-contexts", type=int, default=128, help="held-out contexts scored on (default 128, or all there are)")
    c.add_argument("--no-probing", action="store_true", help="skip k-sparse probing")
    c.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="model dtype (default float32: in bfloat16 one ablation's logit change is mostly rounding)")
    c.add_argument("--table-only", action="store_true", help="only rewrite the table and plot from the scores already stored")
    c.add_argument("--no-plot", action="store_true", help="table only")
    c.set_defaults(func=_interpret)


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


def _interpret(args: argparse.Namespace) -> int:
    from ..autointerp import InterpretConfig, compare_units, interpret_run, parse_units
    from ..autointerp.pool import PoolConfig

    if not args.table_only:
        cfg = InterpretConfig(units=parse_units(args.units), seed=args.seed, probing=not args.no_probing,
                              pool=PoolConfig(n_explain=args.explain_contexts, n_score=args.score_contexts, seed=args.seed))
        r = interpret_run(args.run, cfg, dtype=args.dtype, progress=True)
        for kind, ids in r.selected.items():
            print(f"{kind}s: {len(ids)} selected, {r.scored[kind]} scored now, {r.skipped[kind]} already done")
        if r.seconds:
            print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in r.seconds.items())
                  + (f"; {r.per_unit_seconds:.2f} s per unit" if r.per_unit_seconds else ""))
    c = compare_units(args.run, plot=not args.no_plot)
    print(c.table.read_text(), end="")
    print(f"written to {c.table}" + (f" and {c.plot}" if c.plot else ""))
    return 0
