"""Three layers from one harvest (`harvest --layers 6,15,24`: one forward per batch,
stopping after the deepest) vs three single-layer harvests, side by side in one run
on the same contexts. Rounds alternate the order so machine drift hits both.

The bound for layers 6, 15, 24: three harvests run 7 + 16 + 25 = 48 blocks per token,
one pass runs 25, so x1.92 at most from the model alone.

    python benchmarks/harvest_layers.py [--tokens 8192] [--layers 6,15,24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from monosemantic.activations import HarvestConfig, harvest, harvest_layers
from monosemantic.activations.run import prepare_tokens
from monosemantic.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--layers", default="6,15,24")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="embedded")
    args = parser.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    lm = load_model(args.model)
    scratch = Path(tempfile.mkdtemp(prefix="harvest-layers-"))
    tokens, _ = prepare_tokens(scratch / "run", lm, args.tokens, 128, None, 0, progress=False)
    n = tokens.contexts.size
    print(f"{lm.name} ({lm.dtype}), {n:,} tokens, layers {layers}")

    def one_pass() -> float:
        shutil.rmtree(scratch / "one", ignore_errors=True)
        start = time.perf_counter()
        harvest_layers(lm, tokens, {x: scratch / "one" / str(x) for x in layers}, HarvestConfig(layer=layers[-1]), progress=False)
        return time.perf_counter() - start

    def separately() -> float:
        shutil.rmtree(scratch / "sep", ignore_errors=True)
        start = time.perf_counter()
        for x in layers:
            harvest(lm, tokens, scratch / "sep" / str(x), HarvestConfig(layer=x), progress=False)
        return time.perf_counter() - start

    one, sep = [], []
    for r in range(args.rounds):
        for name, fn, into in ([("one pass", one_pass, one), ("3 harvests", separately, sep)][:: 1 if r % 2 == 0 else -1]):
            into.append(fn())
            print(f"round {r}: {name:10s} {into[-1]:6.1f} s = {n / into[-1]:6.0f} tokens/s (all {len(layers)} layers)")
    a, b = statistics.median(one), statistics.median(sep)
    print(f"one pass {n / a:.0f} tokens/s vs {len(layers)} harvests {n / b:.0f} tokens/s: x{b / a:.2f} faster")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
