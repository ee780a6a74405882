"""Does steering work, judged on the text it generates (steering/judge.py)?

For each shipped concept set: the feature is chosen by the fixed procedure
(contrastive candidates re-ranked by logit effect toward the concept's words; no
hand picking) on the train half of the set's texts, and judged on its test half (the
fixed split of steering/concept_sets.py). It is clamped at each strength (x its max activation over the
dataset) while the model answers a few neutral chat prompts; each completion is
judged on concept (embedding margin to the held-out texts, or a concept word) and
fluent (perplexity under the unsteered model, repeated trigrams). Random live
features clamped the same way, and the unsteered model, give the baselines: a
completion of a random feature is judged against every concept.

A chosen feature is reported as spurious when, on the held-out half, it does not
fire more on the positives than on the negatives (contrastive score < 0.1 in units
of its dataset max): it was picked for something the other half does not share.

    .venv/bin/python benchmarks/steering.py RUN [--strengths 1,2,3,5,10] [--random 8] [--prompts 3] [--samples 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.models.sentence import SentenceEmbedder  # noqa: E402
from monosemantic.steering import Intervention, concept_names, find_concept_features, load_concept, open_run, steer  # noqa: E402
from monosemantic.steering.concepts import Concept, _per_text_max, contrastive_scores, text_activations  # noqa: E402
from monosemantic.steering.generate import encode_prompt, sample_ids  # noqa: E402
from monosemantic.steering.judge import ConceptJudge, perplexity  # noqa: E402

PROMPTS = ["Tell me about your weekend.", "Write a short note to a friend.", "What should I do this afternoon?"]
SPURIOUS_BELOW = 0.1


def halves(concept: Concept) -> tuple[Concept, Concept]:
    """The concept file's fixed (train, test) split (steering/concept_sets.py)."""
    return concept.halves()


def heldout_score(run, concept: Concept, feature: int) -> float:
    n = run.n_latents
    pos = _per_text_max(text_activations(run.lm, run.sae, run.layer, concept.positive), n)[:, feature]
    neg = _per_text_max(text_activations(run.lm, run.sae, run.layer, concept.negative), n)[:, feature]
    scale = run.max_acts[feature].reshape(1)
    return float(contrastive_scores(pos[:, None], neg[:, None], scale)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory with sae/ and features.db (e.g. runs/main after the main job)")
    ap.add_argument("--concepts", default=",".join(concept_names()))
    ap.add_argument("--strengths", default="1,2,3,5,10", help="clamp values in units of the feature's max activation")
    ap.add_argument("--random", type=int, default=8, help="random live features for the baseline")
    ap.add_argument("--prompts", type=int, default=len(PROMPTS), help=f"how many of the {len(PROMPTS)} neutral prompts to use")
    ap.add_argument("--samples", type=int, default=2, help="completions per prompt (one batch, one seed)")
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    run = open_run(args.run)
    if run.max_acts is None:
        sys.exit(f"{args.run} has no features.db: build it first (monosemantic features {args.run})")
    lm, sae, layer = run.lm, run.sae, run.layer
    strengths = [float(s) for s in args.strengths.split(",")]
    embedder = SentenceEmbedder()
    prompts = [encode_prompt(lm, p)[0] for p in PROMPTS[: args.prompts]]

    def generate(interventions) -> list[tuple[torch.Tensor, list[int]]]:
        """(prompt ids, completion ids) for every prompt and sample, same seeds for every condition."""
        out = []
        for j, ids in enumerate(prompts):
            if interventions:
                with steer(lm, sae, layer, interventions, run.max_acts):
                    rows = sample_ids(lm, ids, args.max_new_tokens, args.seed + j, args.temperature, n=args.samples)
            else:
                rows = sample_ids(lm, ids, args.max_new_tokens, args.seed + j, args.temperature, n=args.samples)
            out += [(ids, r) for r in rows]
        return out

    def verdicts(judge: ConceptJudge, completions, ppl):
        v = []
        for ids in prompts:
            group = [(c, p) for (pi, c), p in zip(completions, ppl) if pi is ids]
            v += judge.judge(lm, ids, [c for c, _ in group], [p for _, p in group])
        return v

    def ppls(completions):
        return [perplexity(lm, ids, c) for ids, c in completions]       # unsteered model: outside any steer block

    concepts = []
    for name in args.concepts.split(","):
        chosen_on, judged_on = halves(load_concept(name))
        top = find_concept_features(lm, sae, layer, chosen_on, top=1)[0]
        score = heldout_score(run, judged_on, top.feature)
        judge = ConceptJudge(embedder, judged_on.positive, judged_on.negative, judged_on.tokens)
        concepts.append({"name": name, "feature": top.feature, "detail": top.detail, "heldout_contrastive": score,
                         "spurious": score < SPURIOUS_BELOW, "judge": judge})
        print(f"{name:<10} feature {top.feature:>5} (held-out contrastive {score:.2f}{', SPURIOUS' if score < SPURIOUS_BELOW else ''}; {top.detail})", flush=True)

    live = torch.nonzero(run.max_acts > 0).flatten()
    random_feats = live[torch.randperm(len(live), generator=torch.Generator().manual_seed(args.seed))[: args.random]].tolist()

    base = generate([])
    base_ppl = ppls(base)
    results = {"run": str(args.run), "prompts": PROMPTS[: args.prompts], "samples": args.samples, "random_features": random_feats,
               "strengths": strengths, "concepts": [{k: v for k, v in c.items() if k != "judge"} for c in concepts],
               "unsteered": {}, "table": {}, "examples": {}}
    for c in concepts:
        v = verdicts(c["judge"], base, base_ppl)
        results["unsteered"][c["name"]] = {"on_concept": sum(x.on_concept for x in v) / len(v), "success": sum(x.success for x in v) / len(v)}
    print("unsteered perplexities: " + " ".join(f"{p:.1f}" for p in base_ppl), flush=True)

    for s in strengths:
        rand = []
        for f in random_feats:
            comp = generate([Intervention(f, "clamp", s, "max")])
            rand.append((comp, ppls(comp)))
        for c in concepts:
            comp = generate([Intervention(c["feature"], "clamp", s, "max")])
            v = verdicts(c["judge"], comp, ppls(comp))
            rv = [x for comp_r, ppl_r in rand for x in verdicts(c["judge"], comp_r, ppl_r)]
            row = {"on_concept": sum(x.on_concept for x in v) / len(v), "fluent": sum(x.fluent for x in v) / len(v),
                   "success": sum(x.success for x in v) / len(v), "random_success": sum(x.success for x in rv) / len(rv),
                   "random_fluent": sum(x.fluent for x in rv) / len(rv)}
            results["table"].setdefault(c["name"], {})[f"{s:g}"] = row
            results["examples"].setdefault(c["name"], {})[f"{s:g}"] = [x._asdict() for x in v[:2]]
            print(f"{s:>4g}x {c['name']:<10} on {row['on_concept']:.2f} fluent {row['fluent']:.2f} success {row['success']:.2f} "
                  f"(random {row['random_success']:.2f}, random fluent {row['random_fluent']:.2f}) | {v[0].text[:70]!r}", flush=True)

    print(f"\n{'concept':<10} {'feature':>7} " + " ".join(f"{f'{s:g}x':>15}" for s in strengths) + "   (success, random success)")
    for c in concepts:
        cells = [results["table"][c["name"]][f"{s:g}"] for s in strengths]
        flag = " spurious" if c["spurious"] else ""
        print(f"{c['name']:<10} {c['feature']:>7} " + " ".join(f"{r['success']:>7.2f} / {r['random_success']:.2f}" for r in cells) + flag)
    mean = {f"{s:g}": sum(results["table"][c["name"]][f"{s:g}"]["success"] for c in concepts) / len(concepts) for s in strengths}
    best = max(mean, key=mean.get)
    results["mean_success"], results["best_strength"] = mean, float(best)
    print("mean success: " + ", ".join(f"{k}x {v:.2f}" for k, v in mean.items()) + f"; best {best}x")
    results["seconds"] = time.perf_counter() - start
    print(f"{results['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
