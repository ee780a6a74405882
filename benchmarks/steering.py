"""Does steering work? For each shipped concept set, find its top feature by the fixed
procedure (contrastive candidates re-ranked by logit effect toward the concept's
tokens; no hand picking), clamp it at 5x and 10x its max activation over the dataset,
and measure the change in log P(any concept token) as the next token after a few
neutral prompts. The same clamp on random live features gives the null spread; a
concept feature succeeds when its change beats the random features' 90th percentile
for that concept's tokens.

    .venv/bin/python benchmarks/steering.py RUN [--random 30] [--scales 5,10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.steering import Intervention, concept_names, find_concept_features, load_concept, open_run, steer  # noqa: E402
from monosemantic.steering.concepts import concept_token_ids, text_activations  # noqa: E402

NEUTRAL_PROMPTS = [
    "I woke up early this morning and",
    "The most important thing to remember is",
    "Yesterday my friend told me that",
    "Here is a short note:",
    "In the afternoon, we decided to",
]


def batch_ids(lm, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = [[lm.bos_id] + list(lm.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    T = max(map(len, rows))
    pad = lm.tokenizer.pad_token_id or 0
    ids = torch.tensor([r + [pad] * (T - len(r)) for r in rows])        # right-padded: positions stay aligned
    mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
    last = torch.tensor([len(r) - 1 for r in rows])
    return ids, mask, last


def next_logprobs(lm, ids, mask, last) -> torch.Tensor:
    logits = lm.logits(ids, attention_mask=mask)                          # [P, T, V]
    return torch.log_softmax(logits[torch.arange(len(last)), last].float(), -1)  # [P, V]


def concept_logp(logprobs: torch.Tensor, token_ids: list[int]) -> torch.Tensor:
    return torch.logsumexp(logprobs[:, token_ids], -1)                    # [P] log P(any concept token)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory with sae/ and features.db (e.g. runs/main after the main job)")
    ap.add_argument("--concepts", default=",".join(concept_names()))
    ap.add_argument("--random", type=int, default=30, help="random live features for the null spread")
    ap.add_argument("--scales", default="5,10")
    ap.add_argument("--percentile", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    run = open_run(args.run)
    lm, sae, layer = run.lm, run.sae, run.layer
    scales = [float(s) for s in args.scales.split(",")]
    concepts = [load_concept(c) for c in args.concepts.split(",")]
    ids, mask, last = batch_ids(lm, NEUTRAL_PROMPTS)
    base = next_logprobs(lm, ids, mask, last)                             # [P, V]

    chosen = []
    for c in concepts:
        top = find_concept_features(lm, sae, layer, c, top=1)[0]
        mx = float(run.max_acts[top.feature]) if run.max_acts is not None else 0.0
        if mx <= 0:  # not in features.db: its max on the positive texts
            mx = float(max(a[:, top.feature].max() for a in text_activations(lm, sae, layer, c.positive)))
        chosen.append((c, top, mx, concept_token_ids(lm.tokenizer, c.tokens)))
        print(f"{c.name:<10} feature {top.feature:>5} (max act {mx:.2f}; {top.detail})", flush=True)

    live = torch.nonzero(run.max_acts > 0).flatten() if run.max_acts is not None else torch.arange(sae.W_dec.shape[0])
    g = torch.Generator().manual_seed(args.seed)
    random_feats = live[torch.randperm(len(live), generator=g)[: args.random]].tolist()

    def delta(feature: int, value: float) -> torch.Tensor:
        with steer(lm, sae, layer, [Intervention(feature, "clamp", value)]):
            return next_logprobs(lm, ids, mask, last) - base              # [P, V]

    results = {"run": str(args.run), "layer": layer, "prompts": NEUTRAL_PROMPTS, "random_features": random_feats, "scales": {}}
    for scale in scales:
        # the null: every random feature's change in every concept's log-probability
        null = np.zeros((len(random_feats), len(chosen)))
        for r, f in enumerate(random_feats):
            d = base + delta(f, scale * float(run.max_acts[f]))           # steered log-probs
            for j, (_, _, _, toks) in enumerate(chosen):
                null[r, j] = float((concept_logp(d, toks) - concept_logp(base, toks)).mean())
        rows, wins = [], 0
        print(f"\nclamp at {scale:g}x max activation; change in log P(concept token), mean over {len(NEUTRAL_PROMPTS)} neutral prompts")
        print(f"{'concept':<10} {'feature':>7} {'Δ logP':>8} {'random p50':>10} {f'p{args.percentile:g}':>8} {'random max':>10}  success")
        for j, (c, top, mx, toks) in enumerate(chosen):
            d = base + delta(top.feature, scale * mx)
            change = float((concept_logp(d, toks) - concept_logp(base, toks)).mean())
            thr = float(np.percentile(null[:, j], args.percentile))
            ok = change > thr
            wins += ok
            rows.append({"concept": c.name, "feature": top.feature, "max_act": mx, "delta_logp": change,
                         "random_median": float(np.median(null[:, j])), "random_threshold": thr,
                         "random_max": float(null[:, j].max()), "success": bool(ok)})
            print(f"{c.name:<10} {top.feature:>7} {change:>8.2f} {np.median(null[:, j]):>10.2f} {thr:>8.2f} {null[:, j].max():>10.2f}  {'yes' if ok else 'no'}")
        rate = wins / len(chosen)
        print(f"success rate at {scale:g}x: {wins}/{len(chosen)} = {rate:.0%}", flush=True)
        results["scales"][f"{scale:g}"] = {"success_rate": rate, "concepts": rows}
    results["seconds"] = time.perf_counter() - start
    print(f"\n{results['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
