"""Does steering work, judged on the text it generates (steering/judge.py)?

For each concept set: features are chosen on one half of its texts and judged on the
other. Chosen by their output effect (steering/selection.py: adding the decoder
direction raises the log-probability of the half's positive texts, and more than of
its negatives), the top `--combine` N of them are added together at each strength s
(each at s/N x its max activation over the dataset, at the generated positions only)
while the model answers neutral chat prompts. Each completion is judged on concept
(embedding margin to the *held-out* texts above the unsteered answers' margin, or a
concept word they do not use) and fluent (perplexity under the
unsteered model, repeated trigrams, letters, word repeats). Baselines: random live
features steered the same way (a random completion is judged against every concept),
and with `--compare-input` the old choice by input (contrastive, re-ranked by logit
effect: steering/concepts.py) steered the same way.

Per cell: on concept, fluent, success (= both) over all completions, best-of-n
success (a prompt counts when any of its samples succeeds: sampling and picking by the
judge, for this benchmark only), the perplexity rise over the unsteered answers, and
the held-out log-probability gain (nats/token, positives minus negatives).

    .venv/bin/python benchmarks/steering.py RUN [--concepts a,b] [--strengths 1,2,5,10] [--random 4] [--json out.json]
        [--random-cache random.json]   # one concept per process: docs/steering.md has the measured sweep
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.atomic import write_json  # noqa: E402
from monosemantic.models.sentence import SentenceEmbedder  # noqa: E402
from monosemantic.steering import Intervention, concept_names, find_concept_features, load_concept, open_run, steer  # noqa: E402
from monosemantic.steering.concepts import Concept  # noqa: E402
from monosemantic.steering.generate import encode_prompt, sample_ids  # noqa: E402
from monosemantic.steering.judge import ConceptJudge, perplexity  # noqa: E402
from steering_table import summarise  # noqa: E402  (benchmarks/, next to this file)
from monosemantic.steering.selection import TEXTS_PER_SIDE, answer_logprobs, find_steering_features  # noqa: E402

PROMPTS = ["Tell me about your weekend.", "Write a short note to a friend.", "What should I do this afternoon?"]


def halves(concept: Concept) -> tuple[Concept, Concept]:
    """The concept file's fixed (train, test) split (steering/concept_sets.py)."""
    return concept.halves()


class Bench:
    def __init__(self, run, args):
        self.run, self.args = run, args
        self.lm, self.sae, self.layer = run.lm, run.sae, run.layer
        self.prompts = [encode_prompt(self.lm, p)[0] for p in PROMPTS[: args.prompts]]

    def generate(self, features: list[int], strength: float) -> list[tuple[int, list[int]]]:
        """(prompt index, completion ids) for every prompt and sample; the same seeds in every condition."""
        out = []
        ivs = [Intervention(f, "add", strength / len(features), "max") for f in features] if features else []
        for j, ids in enumerate(self.prompts):
            a = self.args
            if ivs:
                with steer(self.lm, self.sae, self.layer, ivs, self.run.max_acts, positions=a.positions):
                    rows = sample_ids(self.lm, ids, a.max_new_tokens, a.seed + j, a.temperature, n=a.samples)
            else:
                rows = sample_ids(self.lm, ids, a.max_new_tokens, a.seed + j, a.temperature, n=a.samples)
            out += [(j, r) for r in rows]
        return out

    def perplexities(self, completions) -> list[float]:
        return [perplexity(self.lm, self.prompts[j], c) for j, c in completions]  # the unsteered model

    def verdicts(self, judge: ConceptJudge, completions, ppl):
        v = []
        for j, ids in enumerate(self.prompts):
            group = [(c, p) for (pj, c), p in zip(completions, ppl) if pj == j]
            v += [(j, x) for x in judge.judge(self.lm, ids, [c for c, _ in group], [p for _, p in group])]
        return v

    def logprob_gain(self, judged_on: Concept, features: list[int], strength: float) -> float:
        """Held-out positives' minus negatives' log-probability gain under the steering, nats/token."""
        pos, neg = judged_on.positive[:TEXTS_PER_SIDE], judged_on.negative[:TEXTS_PER_SIDE]
        base = answer_logprobs(self.lm, self.layer, None, pos + neg)
        direction = sum(strength / len(features) * float(self.run.max_acts[f]) * self.sae.W_dec[f].float() for f in features)
        gain = answer_logprobs(self.lm, self.layer, None, pos + neg, direction) - base
        n = len(pos)
        return float(gain[:n].mean() - gain[n:].mean())


def random_completions(bench: Bench, features: list[int], strengths: list[float], args) -> dict:
    """{strength: [(completions, perplexities) per random feature]}. With --random-cache
    they are read from (or written to) that file, so a sweep run one concept per
    process (each analysis bounded) generates the baseline once; the file records the
    settings and is regenerated when they differ."""
    key = {"run": str(Path(args.run).resolve()), "features": features, "strengths": strengths,
           **{k: getattr(args, k) for k in ("prompts", "samples", "max_new_tokens", "temperature", "seed", "positions")}}
    cache = Path(args.random_cache) if args.random_cache else None
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return {float(s): [([tuple(c) for c in comp], ppl) for comp, ppl in rows] for s, rows in data["rand"].items()}
    rand = {s: [(c := bench.generate([f], s), bench.perplexities(c)) for f in features] for s in strengths}
    if cache is not None:
        write_json(cache, {"key": key, "rand": {f"{s:g}": rows for s, rows in rand.items()}})
    return rand


def cell(verdicts, base_ppl: float) -> dict:
    v = [x for _, x in verdicts]
    prompts = {j for j, _ in verdicts}
    finite = [x.perplexity for x in v if x.perplexity != float("inf")]
    return {"on_concept": sum(x.on_concept for x in v) / len(v), "fluent": sum(x.fluent for x in v) / len(v),
            "success": sum(x.success for x in v) / len(v),
            "best_of_n": sum(any(x.success for k, x in verdicts if k == j) for j in prompts) / len(prompts),
            "ppl_rise": (statistics.median(finite) - base_ppl) if finite else float("inf")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory with sae/ and features.db (e.g. runs/main after the main job)")
    ap.add_argument("--concepts", default=",".join(concept_names()))
    ap.add_argument("--strengths", default="1,2,5,10", help="added along the decoder direction, in units of each feature's max activation")
    ap.add_argument("--combine", type=int, default=2, help="add the top N features by output score together")
    ap.add_argument("--candidates", type=int, default=12, help="contrastive candidates scored by output effect (plus a third as many by logit effect)")
    ap.add_argument("--positions", default="generated", choices=["generated", "all"])
    ap.add_argument("--random", type=int, default=4, help="random live features for the baseline")
    ap.add_argument("--compare-input", action="store_true", help="also steer the feature chosen by input (the old procedure)")
    ap.add_argument("--prompts", type=int, default=2, help=f"how many of the {len(PROMPTS)} neutral prompts to use")
    ap.add_argument("--samples", type=int, default=3, help="completions per prompt (one batch, one seed)")
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--random-cache", default=None, help="JSON file holding the random baseline's completions (reused when the settings match)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    run = open_run(args.run)
    if run.max_acts is None:
        sys.exit(f"{args.run} has no features.db: build it first (monosemantic features {args.run})")
    bench = Bench(run, args)
    strengths = [float(s) for s in args.strengths.split(",")]
    embedder = SentenceEmbedder()

    base = bench.generate([], 0.0)
    base_ppl_list = bench.perplexities(base)
    base_ppl = statistics.median(base_ppl_list)
    base_texts = [bench.lm.tokenizer.decode(c, skip_special_tokens=True) for _, c in base]  # the judge's calibration
    print(f"unsteered perplexity median {base_ppl:.1f}: " + " ".join(f"{p:.1f}" for p in base_ppl_list), flush=True)
    live = torch.nonzero(run.max_acts > 0).flatten()
    random_feats = live[torch.randperm(len(live), generator=torch.Generator().manual_seed(args.seed))[: args.random]].tolist()
    rand = random_completions(bench, random_feats, strengths, args)
    print(f"random features {random_feats}: generated at every strength ({time.perf_counter() - start:.0f} s)", flush=True)

    results = {"run": str(args.run), "args": vars(args), "random_features": random_feats, "unsteered_ppl": base_ppl,
               "concepts": {}}
    for name in args.concepts.split(","):
        t0 = time.perf_counter()
        chosen_on, judged_on = halves(load_concept(name))
        judge = ConceptJudge(embedder, judged_on.positive, judged_on.negative, judged_on.tokens, baseline_texts=base_texts)
        picked = find_steering_features(bench.lm, bench.sae, bench.layer, chosen_on, run.max_acts, top=args.combine,
                                        candidates=args.candidates)
        feats = [p.feature for p in picked]
        conditions = {"output": feats}
        if args.compare_input:
            conditions["input"] = [find_concept_features(bench.lm, bench.sae, bench.layer, chosen_on, top=1)[0].feature]
        entry = {"judge_offset": judge.offset, "judge_words": judge.words, "features": [{"feature": p.feature, "score": p.score, "detail": p.detail} for p in picked],
                 "input_feature": conditions.get("input"), "heldout_texts": [len(judged_on.positive), len(judged_on.negative)],
                 "unsteered": cell(bench.verdicts(judge, base, base_ppl_list), base_ppl), "table": {}, "examples": {}}
        print(f"{name}: steering {feats} ({'; '.join(p.detail for p in picked)})", flush=True)
        for s in strengths:
            row = {}
            for cond, fs in conditions.items():
                comp = bench.generate(fs, s)
                v = bench.verdicts(judge, comp, bench.perplexities(comp))
                row[cond] = cell(v, base_ppl) | {"logprob_gain": bench.logprob_gain(judged_on, fs, s)}
                if cond == "output":
                    entry["examples"][f"{s:g}"] = [x._asdict() for _, x in v[:: args.samples]]
            rv = [x for comp_r, ppl_r in rand[s] for x in bench.verdicts(judge, comp_r, ppl_r)]
            row["random"] = cell(rv, base_ppl)
            entry["table"][f"{s:g}"] = row
            o, r = row["output"], row["random"]
            extra = f" | input success {row['input']['success']:.2f}" if "input" in row else ""
            print(f"  {s:>4g}x on {o['on_concept']:.2f} fluent {o['fluent']:.2f} success {o['success']:.2f} "
                  f"best-of-{args.samples} {o['best_of_n']:.2f} (random {r['success']:.2f}, random fluent {r['fluent']:.2f}) "
                  f"ppl +{o['ppl_rise']:.1f} dlp {o['logprob_gain']:+.3f}{extra} | {entry['examples'][f'{s:g}'][0]['text'][:80]!r}", flush=True)
        entry["seconds"] = time.perf_counter() - t0
        results["concepts"][name] = entry
        if args.json:  # after every concept, so a killed sweep keeps what it measured
            write_json(args.json, results)

    print(f"\n{'concept':<22} " + " ".join(f"{f'{s:g}x':>13}" for s in strengths) + "   (success [random])")
    for name, e in results["concepts"].items():
        cells = [e["table"][f"{s:g}"] for s in strengths]
        print(f"{name:<22} " + " ".join(f"{c['output']['success']:>6.2f} [{c['random']['success']:.2f}]" for c in cells))
    summary = summarise(results)
    results["summary"] = summary
    for s, m in summary.items():
        print(f"{s}x: success {m['success']:.2f} (random {m['random_success']:.2f}), fluent {m['fluent']:.2f}, "
              f"best-of-n {m['best_of_n']:.2f}, concepts above random {m['beats_random']:.2f}"
              + (f", input-chosen success {m['input_success']:.2f}" if "input_success" in m else ""))
    results["seconds"] = time.perf_counter() - start
    print(f"{results['seconds']:.0f} s")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
