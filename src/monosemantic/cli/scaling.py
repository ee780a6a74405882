"""`monosemantic flops`, `monosemantic sweep SPEC` and `monosemantic scaling
fit|plan|family SWEEP`: compute accounting, sweeps and fitted scaling laws.

Bad inputs (an unreadable or invalid SPEC, a directory that is not a sweep, a
non-positive number) are usage errors: one line on stderr and exit status 2, as
argparse does; failures while training stay exit status 1 (cli/main.py)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..errors import ConfigError, StoreError
from ..sae import ARCHITECTURES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="training FLOPs per step and per run of an SAE",
                       description="Matmul FLOPs of one training step (forward + backward) as our implementation "
                       "computes it: dense for relu/jumprelu, sparse decoder and backward for topk/batchtopk.")
    p.add_argument("--architecture", default="relu", choices=list(ARCHITECTURES))
    p.add_argument("--latents", type=int, required=True, help="dictionary size N")
    p.add_argument("--d", type=int, required=True, help="input width (the model's d_model)")
    p.add_argument("--batch", type=int, default=1024, help="rows per step (default 1024)")
    p.add_argument("--k", type=int, default=32, help="topk/batchtopk: active latents (default 32)")
    p.add_argument("--dead", type=int, default=0, help="topk/batchtopk: dead latents (AuxK cost; default 0)")
    p.add_argument("--tokens", type=int, default=None, help="training tokens: also print the whole run's FLOPs")
    p.set_defaults(func=_flops)

    p = sub.add_parser("sweep", help="train a grid or list of SAEs over one store (resumable)",
                       description="Train every run of SPEC (JSON: activations, grid and/or runs; see "
                       "docs/scaling.md) under SWEEP/runs/, each scored on the same held-out sample. "
                       "Finished runs are skipped, interrupted ones resumed: rerun the same command to continue.")
    p.add_argument("spec", help="sweep spec (JSON)")
    p.add_argument("--out", default=None, help="sweep directory (default: SPEC without .json)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once in worker processes (default 1: every run in one pass over the store, "
                   "the SAEs of a step stepped at once, one per thread; OMP_NUM_THREADS sets the threads)")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("scaling", help="fit scaling laws to a sweep, plan a budget, train a family")
    s = p.add_subparsers(dest="scaling_command", metavar="ACTION", required=True)
    f = s.add_parser("fit", help="frontier and power laws L*(C), N*(C), T*(C) with bootstrap CIs; plots",
                     description="Loss frontier per compute budget and power-law fits of L*(C), N*(C), T*(C) with "
                     "bootstrap CIs on the exponents; the largest budget is also predicted from the smaller ones. "
                     "Writes SWEEP/scaling_fit.json and two PNGs (docs/scaling.md).")
    f.add_argument("sweep", help="sweep directory")
    f.add_argument("--plots", default=None, help="folder for the PNGs (default SWEEP/plots)")
    f.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    f.set_defaults(func=_fit)
    f = s.add_parser("plan", help="features and tokens for a compute budget, with the predicted loss")
    f.add_argument("sweep", help="sweep directory")
    g = f.add_mutually_exclusive_group(required=True)
    g.add_argument("--budget", type=float, help="training FLOPs")
    g.add_argument("--hours", type=float, help="hours on this machine, at the sweep's measured throughput")
    f.set_defaults(func=_plan)
    f = s.add_parser("family", help="train three SAEs along the fitted frontier and evaluate them",
                     description="Train the planner's allocation at budgets TOP/FACTOR², TOP/FACTOR and TOP under "
                     "SWEEP/family/ (finished members are skipped) and evaluate each: FVE, L0, dead fraction, and "
                     "loss recovered when the store's run has its model and tokens (a few forward passes of the model).")
    f.add_argument("sweep", help="sweep directory")
    f.add_argument("--top", type=float, default=None, help="largest budget in FLOPs (default: the sweep's largest)")
    f.add_argument("--factor", type=float, default=4.0, help="budget ratio between members (default 4)")
    f.add_argument("--eval-tokens", type=int, default=20_000, help="held-out tokens for each member's eval")
    f.set_defaults(func=_family)


def _usage_error(message: object) -> int:
    print(f"monosemantic: error: {message}", file=sys.stderr)
    return 2


def _positive(args: argparse.Namespace, *names: str) -> str | None:
    """The first of the named options that is set but not a positive finite number."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"--{name.replace('_', '-')} must be positive, got {value:g}"
    return None


def _flops(args: argparse.Namespace) -> int:
    from ..scaling.flops import step_flops

    bad = _positive(args, "latents", "d", "batch", "k", "tokens")
    if bad or args.dead < 0:
        return _usage_error(bad or f"--dead must be ≥ 0, got {args.dead}")
    s = step_flops(args.architecture, args.d, args.latents, args.batch, args.k, args.dead)
    print(f"{args.architecture}, N={args.latents:,}, d={args.d}, B={args.batch}"
          f"{f', k={args.k}' if ARCHITECTURES[args.architecture].sparsity_knob == 'k' else ''}: per step "
          f"{s.total:.4e} FLOPs (encoder fwd {s.encoder_forward:.3e}, decoder fwd {s.decoder_forward:.3e}, "
          f"backward {s.backward:.3e}, AuxK {s.aux:.3e})")
    if args.tokens is not None:
        steps = args.tokens // args.batch
        print(f"{steps:,} steps ({steps * args.batch:,} tokens): {steps * s.total:.4e} FLOPs")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from ..activations import open_store
    from ..scaling.sweep import load_spec, prepare, run_sweep

    out = Path(args.out) if args.out else Path(args.spec).with_suffix("")
    if args.jobs < 1:
        return _usage_error(f"--jobs must be at least 1, got {args.jobs}")
    try:
        spec = load_spec(args.spec)
        open_store(spec.activations)
        prepare(out, spec)       # refuses a sweep directory made for another store or eval sample
    except (ConfigError, StoreError) as e:
        return _usage_error(e)
    results = run_sweep(out, spec, jobs=args.jobs)
    print(f"{len(results)}/{len(spec.runs)} runs finished in {out} (fit: monosemantic scaling fit {out})")
    return 0


def _load_fit(sweep: str, n_boot: int = 2000):
    """(results, fit) of a sweep directory; ConfigError when it is not a sweep or
    has too few finished runs to fit."""
    from ..scaling.fit import fit_sweep
    from ..scaling.sweep import collect

    results = collect(sweep)
    return results, fit_sweep(results, n_boot=n_boot)


def _fit(args: argparse.Namespace) -> int:
    from .. import atomic
    from ..scaling.fit import format_fit
    from ..scaling.plots import plot_scaling

    if args.bootstrap < 1:
        return _usage_error(f"--bootstrap must be at least 1, got {args.bootstrap}")
    try:
        results, fit = _load_fit(args.sweep, args.bootstrap)
    except ConfigError as e:
        return _usage_error(e)
    atomic.write_json(Path(args.sweep) / "scaling_fit.json", fit.to_dict())
    paths = plot_scaling(results, fit, args.plots or Path(args.sweep) / "plots")
    print(format_fit(fit))
    print(f"-> {Path(args.sweep) / 'scaling_fit.json'}, {', '.join(map(str, paths))}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from ..scaling.plan import format_plan, plan

    bad = _positive(args, "budget", "hours")
    if bad:
        return _usage_error(bad)
    try:
        _, fit = _load_fit(args.sweep)
        p = plan(fit, args.budget, args.hours, batch_size=_batch(args.sweep))
    except ConfigError as e:
        return _usage_error(e)
    print(format_plan(p))
    return 0


def _batch(sweep: str) -> int:
    from ..scaling.sweep import read_sweep

    return read_sweep(sweep).batch_size


def _family(args: argparse.Namespace) -> int:
    from ..scaling.family import family_budgets, format_family, train_family

    bad = _positive(args, "top", "eval_tokens")
    if bad or not args.factor > 1:
        return _usage_error(bad or f"--factor must be > 1, got {args.factor:g}")
    try:
        _, fit = _load_fit(args.sweep)
    except ConfigError as e:
        return _usage_error(e)
    members = train_family(args.sweep, fit, family_budgets(fit, args.factor, args.top), eval_tokens=args.eval_tokens)
    print(format_family(members))
    return 0
