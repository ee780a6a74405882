"""`monosemantic concept-catalogue RUN`: every concept set measured on a run (the
feature chosen on the train half, its held-out AUROC, spurious or not), or with
`--concrete-abstract` the features shared by concrete and abstract texts of a concept."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "concept-catalogue", help="measure the concept sets: held-out AUROC per concept, or concrete vs abstract",
        description="For each concept set (default: every shipped one), choose a feature on its train half by "
        "best AUROC and, beside it, with the `concept` procedure (contrastive, re-ranked by logit effect); score both on the test half it never saw: "
        "AUROC of per-text max activation, positives vs negatives; spurious when below 0.75. With --concrete-abstract, "
        "for the sets whose positives are marked concrete/abstract: the features whose held-out AUROC clears "
        "--threshold on both kinds (shared) vs on one kind only, their overlap, and a shuffled-label null "
        "(docs/concepts.md).",
    )
    p.add_argument("run", help="run directory with sae/ (and features.db for max activations)")
    p.add_argument("--concepts", default=None, help="comma-separated shipped set names or .json files (default: all shipped)")
    p.add_argument("--concrete-abstract", action="store_true", help="the concrete-vs-abstract analysis instead")
    p.add_argument("--threshold", type=float, default=0.8, help="AUROC a feature must reach on a kind (default 0.8)")
    p.add_argument("--off", type=float, default=0.6, help="AUROC below which it does not fire on a kind (default 0.6)")
    p.add_argument("--json", metavar="FILE", default=None, help="write the full results here (default: RUN/concepts.json "
                   "or RUN/concrete_abstract.json)")
    p.add_argument("--model", default=None, help="model spec (default: the one the run recorded)")
    p.add_argument("--layer", type=int, default=None, help="layer (default: the SAE's)")
    p.set_defaults(func=_catalogue)


def _concepts(args):
    from ..steering.concept_sets import concept_names, load_concept

    names = [n.strip() for n in args.concepts.split(",") if n.strip()] if args.concepts else concept_names()
    if not names:
        raise ConfigError("--concepts names no concept set")
    concepts = [load_concept(n) for n in names]   # every file validated before the model loads
    if args.concrete_abstract:
        concepts = [c for c in concepts if c.has_kinds()] if not args.concepts else concepts
        for c in concepts:
            if not c.has_kinds():
                raise ConfigError(f"concept {c.name} has no positives marked concrete and abstract: "
                                  "mark each as {\"text\": ..., \"kind\": \"concrete\"|\"abstract\"}")
    return concepts


def _catalogue(args: argparse.Namespace) -> int:
    from .. import atomic
    from ..progress import progress_bar
    from ..steering.catalogue import concept_maxes

    if not (0.5 < args.threshold <= 1) or not (0 <= args.off <= args.threshold):
        raise ConfigError(f"need 0.5 < --threshold <= 1 and 0 <= --off <= --threshold, got {args.threshold:g} and {args.off:g}")
    concepts = _concepts(args)
    from ..steering.run import open_run

    run = open_run(args.run, model=args.model, layer=args.layer)
    out_path = Path(args.json) if args.json else run.run_dir / ("concrete_abstract.json" if args.concrete_abstract else "concepts.json")
    results = []
    for concept in progress_bar(concepts, desc="concepts", unit="set"):
        maxes = concept_maxes(run.lm, run.sae, run.layer, concept)
        results.append(_measure(args, run, concept, maxes))
    doc = {"run": str(args.run), "layer": run.layer, "n_latents": run.n_latents, "concepts": [r.to_json() for r in results]}
    if args.concrete_abstract:
        doc |= {"threshold": args.threshold, "off": args.off}
        _print_kinds(results)
    else:
        _print_table(results)
    atomic.write_json(out_path, doc)
    print(f"wrote {out_path}")
    return 0


def _measure(args, run, concept, maxes):
    if args.concrete_abstract:
        from ..steering.concrete_abstract import analyse_concept

        return analyse_concept(run.lm, run.sae, run.layer, concept, args.threshold, args.off, maxes=maxes)
    from ..steering.catalogue import measure_concept

    return measure_concept(run.lm, run.sae, run.layer, concept, maxes=maxes)


def _print_table(results) -> None:
    print(f"{'concept':<25} {'train':>7} {'test':>7} | {'best':>5} {'train':>5} {'held-out':>8} {'p':>7} {'':8} | "
          f"{'steer':>5} {'train':>5} {'held-out':>8} {'':8}")
    for r in results:
        cells = [f"{p.feature:>5} {p.train_auroc:>5.2f} {p.heldout_auroc:>8.3f}" for p in (r.best, r.steering)]
        print(f"{r.name:<25} {r.n_train[0]:>3}/{r.n_train[1]:<3} {r.n_test[0]:>3}/{r.n_test[1]:<3} | {cells[0]} "
              f"{r.best.heldout_p:>7.0e} {'SPURIOUS' if r.best.spurious else '':8} | {cells[1]} "
              f"{'SPURIOUS' if r.steering.spurious else '':8}")
    n = len(results)
    print(f"AUROC of per-text max activation, positives vs negatives. best = the feature with the best train-half AUROC; "
          f"steer = the `concept` pick (contrastive, re-ranked by logit effect) on the train half; both scored on the "
          f"test half (held-out). Spurious (held-out < 0.75): best {sum(r.best.spurious for r in results)}/{n}, "
          f"steer {sum(r.steering.spurious for r in results)}/{n}")


def _print_kinds(results) -> None:
    for r in results:
        c = r.counts
        overlap = f"{r.overlap:.2f}" if r.overlap is not None else "-"
        print(f"{r.name}: shared {c['shared']}, concrete-only {c['concrete-only']}, abstract-only {c['abstract-only']}, "
              f"leaning {c['leaning']} (unconfirmed {c['unconfirmed']}); overlap {overlap}; "
              f"null (labels shuffled): {sum(r.null_counts[k] for k in ('shared', 'concrete-only', 'abstract-only', 'leaning'))} confirmed")
        for x in r.features:
            print(f"  {x.feature:>6} {x.category:<14} held-out AUROC concrete {x.heldout['concrete']:.2f} "
                  f"abstract {x.heldout['abstract']:.2f}")
