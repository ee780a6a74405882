"""`monosemantic steer | attribute | concept RUN`: clamp features and compare completions,
attribute a next-token logit to features (vs ablating them), find a concept's features."""

from __future__ import annotations

import argparse
import textwrap

from ..errors import ConfigError
from ..steering.interventions import SPEC_HELP


def _add_run_arguments(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    parser.add_argument("run", nargs="?" if optional else None,
                        help="run directory with sae/ (and features.db for =Nx values and the model name)")
    parser.add_argument("--model", default=None, help="model spec (default: the one the run recorded); must be the SAE's model")
    parser.add_argument("--layer", type=int, default=None, help="layer (default: the SAE's)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"], help="model dtype (default float32)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "steer", help="steered vs unsteered completions of a prompt",
        description="Clamp, add or multiply SAE features at the run's layer (keeping the SAE error term, position 0 "
        "untouched) and print the completion with and without the intervention, sampled with the same seed. "
        + SPEC_HELP + ". Example: --feature 123 --feature 7=+4.",
    )
    _add_run_arguments(p)
    p.add_argument("--prompt", required=True, help="the user prompt (put through the chat template of instruct models)")
    p.add_argument("--feature", action="append", required=True, metavar="SPEC", help="FEATURE | FEATURE=Nx | FEATURE=V | FEATURE=+A | FEATURE=*M (repeatable)")
    p.add_argument("--max-new-tokens", type=int, default=40, help="tokens to generate (default 40)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed, the same for both completions (default 0)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature; 0 = greedy (default 0.7)")
    p.add_argument("--no-chat", action="store_true", help="feed the prompt raw, without the chat template")
    p.add_argument("--positions", default="generated", choices=["generated", "all"],
                   help="steer only the positions that produce new tokens (default; the prompt is read as it is) "
                   "or every position but the first, as the paper clamped")
    p.set_defaults(func=_steer)

    p = sub.add_parser(
        "attribute", help="features behind a next-token logit: attribution vs ablation",
        description="For the prompt's next token, each active feature's attribution (activation x gradient of the target, "
        "SAE error held fixed) and ablation effect (drop in the target when the feature is set to 0), the top features "
        "by each, and the Pearson/Spearman correlation between them.",
    )
    _add_run_arguments(p)
    p.add_argument("--prompt", required=True, help="text whose next token is the target (BOS-like token prepended)")
    p.add_argument("--target", required=True, help="target token (' Paris'; a word without a leading space gets one if that is one token; or a token id)")
    p.add_argument("--versus", default=None, help="second token: the target becomes logit(target) - logit(versus)")
    p.add_argument("--top", type=int, default=20, help="features listed by each ranking (default 20)")
    p.add_argument("--max-ablations", type=int, default=512, help="ablate at most this many active features (default 512)")
    p.add_argument("--chat", action="store_true", help="put the prompt through the chat template first")
    p.set_defaults(func=_attribute)

    p = sub.add_parser(
        "concept", help="features for a concept: contrastive, highlighted span or logit effect",
        description="Rank features for a concept. --concept NAME uses a concept set (contrastive top candidates "
        "re-ranked by logit effect toward its tokens, on the set's train half; each feature's AUROC on the test half "
        "is printed beside it); --positive/--negative FILE rank by contrastive firing; --span FILE "
        "ranks by firing inside [[...]] marks; --tokens a,b ranks by the decoder's logit effect toward those tokens.",
    )
    _add_run_arguments(p, optional=True)  # `concept --list` needs no run
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--concept", help="a shipped concept set (see --list) or a .json file with positive/negative/tokens")
    g.add_argument("--positive", metavar="FILE", help="positive texts: one per paragraph, or a JSON list (needs --negative)")
    g.add_argument("--span", metavar="FILE", help="texts with the concept marked as [[...]]")
    g.add_argument("--tokens", help="comma-separated words: rank by logit effect toward their first tokens")
    g.add_argument("--list", action="store_true", help="list the shipped concept sets")
    p.add_argument("--negative", metavar="FILE", help="negative texts (with --positive)")
    p.add_argument("--top", type=int, default=20, help="features to list (default 20)")
    p.add_argument("--steering", action="store_true", help="with --concept: rank by output effect instead (the features to "
                   "steer with: adding each one's decoder direction makes the train half's concept texts likelier; "
                   "steering/selection.py)")
    p.set_defaults(func=_concept)


def _open(args):
    from ..steering.run import open_run

    return open_run(args.run, model=args.model, layer=args.layer, dtype=args.dtype)


def _steer(args: argparse.Namespace) -> int:
    from ..steering.generate import steered_completions
    from ..steering.interventions import parse_intervention

    specs = [parse_intervention(s) for s in args.feature]  # bad input fails before the model loads
    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if args.temperature < 0:
        raise ConfigError(f"--temperature must be >= 0 (0 = greedy), got {args.temperature:g}")
    run = _open(args)
    out = steered_completions(run.lm, run.sae, run.layer, args.prompt, specs, max_acts=run.max_acts,
                              max_new_tokens=args.max_new_tokens, seed=args.seed, temperature=args.temperature,
                              chat=not args.no_chat, positions=args.positions)
    width = 60
    left = textwrap.wrap(out.unsteered.replace("\n", " ⏎ "), width) or [""]
    right = textwrap.wrap(out.steered.replace("\n", " ⏎ "), width) or [""]
    print(f"layer {run.layer}, seed {args.seed}, temperature {args.temperature:g}, steering {', '.join(out.interventions)} "
          f"at {'the generated positions' if args.positions == 'generated' else 'every position'}")
    print(f"{'unsteered':<{width}} | steered")
    print("-" * width + "-+-" + "-" * width)
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        print(f"{a:<{width}} | {b}")
    return 0


def _attribute(args: argparse.Namespace) -> int:
    from ..steering.attribution import Target, attribute, token_id
    from ..steering.generate import check_length, encode_prompt
    from ..token_text import show_tokens

    run = _open(args)
    tok = run.lm.tokenizer
    ids, _ = encode_prompt(run.lm, args.prompt, chat=args.chat)
    check_length(run.lm, ids.shape[1])
    target = Target(token_id(tok, args.target), token_id(tok, args.versus) if args.versus is not None else None)
    if target.versus == target.token:
        raise ConfigError("--target and --versus are the same token: the difference is always 0")
    res = attribute(run.lm, run.sae, run.layer, ids, target, top=args.top, max_ablations=args.max_ablations)
    name = repr(show_tokens(tok, [target.token])[0]) + (f" - {show_tokens(tok, [target.versus])[0]!r}" if target.versus is not None else "")
    print(f"target logit {name} = {res.target_value:.3f}; {len(res.effects)} active features ablated")
    for title, rows in (("by attribution", res.by_attribution), ("by ablation (drop in target when set to 0)", res.by_ablation)):
        print(f"\ntop {len(rows)} {title}:")
        print(f"{'feature':>8} {'activation':>11} {'attribution':>12} {'ablation':>10}")
        for e in rows:
            print(f"{e.feature:>8} {e.activation:>11.3f} {e.attribution:>12.4f} {e.ablation:>10.4f}")
    print(f"\ncorrelation attribution vs ablation over the {res.n_compared} top features: "
          f"Pearson {res.pearson:.3f}, Spearman {res.spearman:.3f} "
          f"(all {len(res.effects)} ablated: Pearson {res.pearson_all:.3f}, Spearman {res.spearman_all:.3f})")
    return 0


def _concept(args: argparse.Namespace) -> int:
    from ..steering import concepts as C

    if args.list:
        for name in C.concept_names():
            print(f"{name:<12} {C.load_concept(name).description}")
        return 0
    if args.run is None:
        raise ConfigError("give the run directory: monosemantic concept RUN --concept NAME (or --list without a run)")
    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    if args.positive and not args.negative:
        raise ConfigError("--positive needs --negative FILE (texts without the concept)")
    if args.negative and not args.positive:
        raise ConfigError("--negative needs --positive FILE")
    concept = C.load_concept(args.concept) if args.concept else None
    positive = C.read_texts(args.positive) if args.positive else None
    negative = C.read_texts(args.negative) if args.negative else None
    span_texts = C.read_texts(args.span) if args.span else None
    if args.steering and concept is None:
        raise ConfigError("--steering needs --concept NAME (a set with positive and negative texts)")
    run = _open(args)
    lm, sae, layer = run.lm, run.sae, run.layer
    if args.steering:
        return _concept_steering(run, concept, args.top)
    heldout = None
    if concept is not None:  # chosen on the train half, scored on the test half (steering/concept_sets.py)
        from ..steering.catalogue import auroc

        train, test = concept.halves()
        ranked, how = C.find_concept_features(lm, sae, layer, train, top=args.top), f"concept {concept.name} (train half)"
        heldout = auroc(C.text_maxes(lm, sae, layer, test.positive), C.text_maxes(lm, sae, layer, test.negative))
    elif positive is not None:
        ranked, how = C.rank_contrastive(lm, sae, layer, positive, negative, top=args.top), "contrastive"
    elif span_texts is not None:
        ranked, how = C.rank_span(lm, sae, layer, span_texts, top=args.top), "highlighted span"
    else:
        words = [w for w in args.tokens.split(",") if w.strip()]
        ranked, how = C.rank_logit_effect(lm, sae, C.concept_token_ids(lm.tokenizer, words), top=args.top), "logit effect"
    print(f"top {len(ranked)} features by {how}:")
    print(f"{'feature':>8} {'score':>8} {'max act':>8}" + (f" {'held-out AUROC':>14}" if heldout is not None else "") + "  detail")
    for r in ranked:
        mx = f"{float(run.max_acts[r.feature]):8.2f}" if run.max_acts is not None else f"{'-':>8}"
        auc = f" {float(heldout[r.feature]):>14.3f}" if heldout is not None else ""
        print(f"{r.feature:>8} {r.score:>8.3f} {mx}{auc}  {r.detail}")
    if heldout is not None:
        print(f"held-out AUROC: per-text max activation on the {len(test.positive)} + {len(test.negative)} test-half texts "
              "the ranking never saw (0.5 = chance; below 0.75 = spurious)")
    return 0


def _concept_steering(run, concept, top: int) -> int:
    from ..steering.interventions import DEFAULT_ADD
    from ..steering.selection import find_steering_features

    train = concept.halves()[0]
    ranked = find_steering_features(run.lm, run.sae, run.layer, train, run.max_acts, top=top)
    print(f"top {len(ranked)} features to steer {concept.name} with, by output effect (train half):")
    print(f"{'feature':>8} {'score':>8}  detail")
    for r in ranked:
        print(f"{r.feature:>8} {r.score:>8.3f}  {r.detail}")
    if ranked and ranked[0].score <= 0:
        print("no candidate makes the concept's texts likelier (score <= 0): steering will not bring this concept")
    print("steer with: " + " ".join(f"--feature {r.feature}" for r in ranked[:2]) +
          f"   (each adds {DEFAULT_ADD:g}x its max activation at the generated positions; docs/steering.md)")
    return 0
