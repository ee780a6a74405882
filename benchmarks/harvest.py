"""Harvest throughput against a naive full forward, side by side in one run.

Ours: `monosemantic.activations.harvest` (forward stops after block L, `--dtype auto`,
cleaning, float16 shards on disk). Naive: the same model in float32, a full forward
with `output_hidden_states=True`, keeping hidden_states[L + 1]. Rounds alternate
A B A B on the same contexts, so machine drift hits both; the median ratio is printed.
Also prints bytes per token on disk and the peak RSS of a harvest-only process.

    python benchmarks/harvest.py [--tokens 16384] [--rounds 3] [--model embedded]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from monosemantic.activations import HarvestConfig, Tokens, harvest
from monosemantic.activations.run import prepare_tokens
from monosemantic.models import load_model


def naive_harvest(lm, tokens: Tokens, layer: int, batch: int = 16) -> float:
    start = time.perf_counter()
    kept = []
    with torch.inference_mode():
        for i in range(0, tokens.contexts.shape[0], batch):
            ids = torch.from_numpy(tokens.contexts[i : i + batch].astype(np.int64))
            hidden = lm.model(input_ids=ids, output_hidden_states=True).hidden_states[layer + 1]
            kept.append(hidden[:, 1:].reshape(-1, hidden.shape[-1]).numpy().astype(np.float16))
    return time.perf_counter() - start


def ours(lm, tokens: Tokens, layer: int, out: Path) -> float:
    start = time.perf_counter()
    harvest(lm, tokens, out, HarvestConfig(layer=layer), progress=False)
    return time.perf_counter() - start


RSS_CHILD = """
import json, sys, resource, numpy as np
from monosemantic.models import load_model
from monosemantic.activations import harvest, HarvestConfig, Tokens
lm = load_model(sys.argv[1])
t = np.load(sys.argv[2])
harvest(lm, Tokens(t["c"], t["i"], t["p"]), sys.argv[3], HarvestConfig(layer=int(sys.argv[4])), progress=False)
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=16_384)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="embedded")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    fast = load_model(args.model, dtype="auto")
    naive = load_model(args.model, dtype="float32")
    layer = fast.default_layer
    work = Path(tempfile.mkdtemp(prefix="bench-harvest-"))
    tokens, _ = prepare_tokens(work, fast, args.tokens, 128, None, seed=0, progress=False)
    n_tok = tokens.contexts.size
    print(f"model {fast.name}, layer {layer}, {n_tok:,} tokens per round; ours dtype {fast.dtype} ({fast.dtype_reason})")

    ours_tps, naive_tps, ratios = [], [], []
    for r in range(args.rounds):
        t_ours = ours(fast, tokens, layer, work / f"store-{r}")
        t_naive = naive_harvest(naive, tokens, layer)
        ours_tps.append(n_tok / t_ours)
        naive_tps.append(n_tok / t_naive)
        ratios.append(t_naive / t_ours)
        print(f"round {r}: ours {n_tok / t_ours:,.0f} tok/s, naive fp32 full forward {n_tok / t_naive:,.0f} tok/s, ratio {t_naive / t_ours:.2f}x")

    store = work / "store-0"
    manifest = json.loads((store / "manifest.json").read_text())
    disk = sum(f.stat().st_size for f in store.iterdir())
    np.savez(work / "tokens.npz", c=tokens.contexts, i=tokens.doc_ids, p=tokens.doc_pos)
    child = subprocess.run([sys.executable, "-c", RSS_CHILD, args.model, str(work / "tokens.npz"), str(work / "rss-store"), str(layer)],
                           capture_output=True, text=True, check=True)
    rss = json.loads(child.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    print(f"median: ours {statistics.median(ours_tps):,.0f} tok/s, naive {statistics.median(naive_tps):,.0f} tok/s, "
          f"ratio {statistics.median(ratios):.2f}x (target >= 2x)")
    print(f"bytes per stored token on disk: {disk / manifest['count']:.0f} ({manifest['dtype']}, d={manifest['d']}, incl. row trace)")
    print(f"peak RSS of a harvest-only process ({n_tok:,} tokens): {rss:.0f} MB")


if __name__ == "__main__":
    main()
