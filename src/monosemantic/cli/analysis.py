"""`monosemantic family FAMILY` (train and tabulate a size family of SAEs on one
store) and `monosemantic analyze NAME TARGET` (one analysis of a family or run,
from analysis/registry.py, into TARGET/analysis/NAME/). docs/analysis.md."""

from __future__ import annotations

import argparse
import importlib

from ..analysis.registry import ANALYSES, is_built
from ..errors import ConfigError
from .train import add_train_arguments, configs_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("family", help="train a family of SAE sizes on one store and tabulate FVE, L0, loss recovered, dead",
                       description="Train SAEs of several sizes on one activation store, each a normal run FAMILY/n<size> "
                       "lending the store, in one pass over it; evaluate each and write FAMILY/family_table.json and "
                       ".md (the paper's 1M/4M/34M table). Sizes come from --latents or from a sweep's planner "
                       "(--sweep). Rerun to resume: finished members are skipped; a directory of member runs "
                       "(FAMILY/n2048, ...) is adopted with the settings each recorded.", conflict_handler="resolve")
    add_train_arguments(p)   # first: the --latents below (a list of sizes) replaces its single size
    p.add_argument("family", help="family directory (created if missing)")
    p.add_argument("--activations", default=None, metavar="STORE_RUN",
                   help="the run (or store) whose activations every member trains on; recorded in FAMILY/family.json")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--latents", default=None, metavar="N,N,...", help="member sizes, e.g. 2048,8192,32768")
    g.add_argument("--sweep", default=None, help="plan the sizes and training tokens from this sweep's fitted laws "
                   "(`scaling plan`) for three budgets --factor apart ending at --top; the other settings and the "
                   "store are the sweep's (the SAE and training flags are then not used)")
    p.add_argument("--top", type=float, default=None, help="with --sweep: the largest member's budget in FLOPs (default: the sweep's largest)")
    p.add_argument("--factor", type=float, default=4.0, help="with --sweep: budget ratio between members (default 4)")
    p.add_argument("--eval-tokens", type=int, default=50_000, help="held-out activations for each member's eval (default 50,000)")
    p.add_argument("--eval-contexts", type=int, default=48, help="held-out contexts for the spliced loss (default 48)")
    p.set_defaults(func=_family)

    p = sub.add_parser("analyze", help="analyses of a family: geometry, splitting, completeness (into TARGET/analysis/)",
                       description="Run one analysis of a family (or run) and write TARGET/analysis/NAME/ "
                       "(JSON results and PNG figures; docs/analysis.md).")
    s = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    for name, analysis in ANALYSES.items():
        a = s.add_parser(name, help=analysis.help + ("" if is_built(name) else " (not built yet)"), description=analysis.help)
        a.add_argument("target", help="family directory (or one of its member runs)")
        a.add_argument("--out", default=None, help=f"output directory (default TARGET/analysis/{name})")
        before = {action.dest for action in a._actions}
        if is_built(name):
            adder = getattr(importlib.import_module(analysis.module), "add_arguments", None)
            if adder is not None:
                adder(a)
        a.set_defaults(func=_analyze, analysis_name=name, analysis_opts=sorted({x.dest for x in a._actions} - before))


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ConfigError(f"--latents takes sizes separated by commas (e.g. 2048,8192,32768), got {text!r}") from None
    if any(n < 1 for n in sizes):
        raise ConfigError(f"--latents must be positive, got {text!r}")
    return sizes


def _family(args: argparse.Namespace) -> int:
    from ..analysis.family_build import build_family, format_markdown, planned_members, plans_for_sizes

    activations = args.activations
    if args.sweep:   # the sweep's settings and store, the planner's sizes and lengths
        if not args.factor > 1:
            raise ConfigError(f"--factor must be > 1, got {args.factor:g}")
        plans, activations = planned_members(args.sweep, args.top, args.factor)
        activations = args.activations or activations
    elif args.latents:
        sae_cfg, train_cfg = configs_from_args(args)
        sae_cfg.pop("n_latents")
        plans = plans_for_sizes(_sizes(args.latents), sae_cfg, train_cfg)
    else:
        plans = None
    rows = build_family(args.family, plans, activations=activations, eval_tokens=args.eval_tokens,
                        eval_contexts=args.eval_contexts)
    print(format_markdown(rows), end="")
    print(f"-> {args.family}/family_table.json, family_table.md (analyses: monosemantic analyze geometry {args.family})")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from ..analysis.registry import module

    opts = {name: getattr(args, name) for name in args.analysis_opts}   # the flags its add_arguments added
    summary = module(args.analysis_name).run(args.target, args.out, **opts)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0
