"""How close are attribution and ablation on our model? (issue 6, the paper's check)

For a fixed set of prompts with a known next token (and a plausible wrong one), run
`monosemantic.steering.attribution.attribute` on the logit difference target - versus
and report, per prompt and as the median over prompts, the Pearson and Spearman
correlation between each feature's attribution (activation x gradient, SAE error held
fixed) and its ablation effect (the drop in the target when it is set to zero): over
the union of the top-20 lists by each, and over every active feature.

    .venv/bin/python benchmarks/attribution.py RUN [--top 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.steering import open_run  # noqa: E402
from monosemantic.steering.attribution import Target, attribute, token_id  # noqa: E402
from monosemantic.steering.generate import encode_prompt  # noqa: E402

# (prompt, target, versus): written for this benchmark before looking at any result
PROMPTS = [
    ("The capital of France is", " Paris", " London"),
    ("The Eiffel Tower is in the city of", " Paris", " Rome"),
    ("The capital of Japan is", " Tokyo", " Beijing"),
    ("Water freezes at zero degrees", " Celsius", " Fahrenheit"),
    ("def add(a, b):\n    return a", " +", " -"),
    ("import numpy as", " np", " pd"),
    ("One, two, three, four,", " five", " six"),
    ("Monday, Tuesday,", " Wednesday", " Friday"),
    ("She opened the door and said hello to her", " mother", " car"),
    ("The opposite of hot is", " cold", " warm"),
    ("The largest planet in the solar system is", " Jupiter", " Mars"),
    ("The cat sat on the", " mat", " moon"),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    run = open_run(args.run)
    tok = run.lm.tokenizer
    rows = []
    print(f"{'prompt':<44} {'target':>22} {'active':>6} {'r top':>6} {'ρ top':>6} {'r all':>6} {'ρ all':>6}")
    for prompt, target, versus in PROMPTS:
        ids, _ = encode_prompt(run.lm, prompt, chat=False)
        t = Target(token_id(tok, target), token_id(tok, versus))
        res = attribute(run.lm, run.sae, run.layer, ids, t, top=args.top)
        row = {"prompt": prompt, "target": target, "versus": versus, "target_value": res.target_value,
               "active": len(res.effects), "compared": res.n_compared, "pearson_top": res.pearson,
               "spearman_top": res.spearman, "pearson_all": res.pearson_all, "spearman_all": res.spearman_all}
        rows.append(row)
        label = repr(prompt)[:43]
        print(f"{label:<44} {(target + ' -' + versus):>22} {row['active']:>6} {res.pearson:>6.3f} {res.spearman:>6.3f} "
              f"{res.pearson_all:>6.3f} {res.spearman_all:>6.3f}", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in ("pearson_top", "spearman_top", "pearson_all", "spearman_all")}
    print(f"\nmedian over {len(rows)} prompts: top-{args.top} union Pearson {med['pearson_top']:.3f}, "
          f"Spearman {med['spearman_top']:.3f}; all active features Pearson {med['pearson_all']:.3f}, "
          f"Spearman {med['spearman_all']:.3f}  ({time.perf_counter() - start:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "prompts": rows, "median": med}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
