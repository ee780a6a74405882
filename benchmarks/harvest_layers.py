"""Three layers from one harvest (`harvest --layers 6,15,24`: one forward per batch,
stopping after the deepest) vs three single-layer harvests, side by side in one run
on the same contexts, after an untimed warm-up pass. Rounds alternate the order so
machine drift hits both.

Printed, each measured in the same rounds:
- the honest ratio (the issue's target): one pass vs three harvests that each stop
  after their own layer, as `harvest --layer L` does;
- the model-only bound: the forwards alone (no cleaning, no writes), one to the
  deepest layer vs one to each layer. For 6, 15, 24 that is 25 vs 7 + 16 + 25 = 48
  blocks per token, x1.92 at most, plus the embedding that all of them pay;
- against three harvests that each run the whole model (all blocks and the lm_head,
  what a harvest without early stopping, e.g. through `output_hidden_states`, costs).
  This one is labelled as such: it is not the target.

    python benchmarks/harvest_layers.py [--tokens 8192] [--layers 6,15,24] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from monosemantic.activations import HarvestConfig, harvest, harvest_layers
from monosemantic.activations.run import prepare_tokens
from monosemantic.models import load_model
from monosemantic.models.language_model import _hidden_of


@contextlib.contextmanager
def whole_model(lm):
    """lm.residuals captured from a forward that runs every block and the lm_head."""

    @torch.inference_mode()
    def residuals(ids, layers, *args, **kwargs):
        captured = {}
        hooks = [lm.blocks[x].register_forward_hook(lambda _m, _i, out, x=x: captured.__setitem__(x, _hidden_of(out)))
                 for x in set(layers)]
        try:
            lm.model(input_ids=lm._to_ids(ids))
        finally:
            for h in hooks:
                h.remove()
        return {x: captured[x] for x in layers}

    lm.residuals = residuals
    try:
        yield
    finally:
        del lm.residuals


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
    cfg = HarvestConfig(layer=layers[-1])
    print(f"{lm.name} ({lm.dtype}), {n:,} tokens, layers {layers}, {cfg.batch_contexts} contexts a forward")

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def one_pass() -> None:
        shutil.rmtree(scratch / "one", ignore_errors=True)
        harvest_layers(lm, tokens, {x: scratch / "one" / str(x) for x in layers}, cfg, progress=False)

    def separately() -> None:
        shutil.rmtree(scratch / "sep", ignore_errors=True)
        for x in layers:
            harvest(lm, tokens, scratch / "sep" / str(x), HarvestConfig(layer=x), progress=False)

    def separately_whole_model() -> None:
        with whole_model(lm):
            separately()

    batches = [torch.from_numpy(tokens.contexts[i : i + cfg.batch_contexts].astype(np.int64))
               for i in range(0, tokens.contexts.shape[0], cfg.batch_contexts)]

    def model_one() -> None:
        for ids in batches:
            lm.residuals(ids, layers)

    def model_each() -> None:
        for ids in batches:
            for x in layers:
                lm.residuals(ids, [x])

    cases = {"one pass": one_pass, f"{len(layers)} harvests": separately,
             "model only, one forward": model_one, f"model only, {len(layers)} forwards": model_each,
             f"{len(layers)} whole-model harvests": separately_whole_model}
    # A warm-up first pays the process's one-time costs (the first forwards' kernel
    # set-up), which would otherwise land on round 0's first case, the one pass: it
    # read 9.7 s there and 7.8 s in round 1 (2026-12-02).
    one_pass()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.rounds):
        for name in (list(cases) if r % 2 == 0 else list(cases)[::-1]):
            times[name].append(timed(cases[name]))
            print(f"round {r}: {name:28s} {times[name][-1]:6.1f} s = {n / times[name][-1]:6.0f} tokens/s (all {len(layers)} layers)")
    t = {name: statistics.median(v) for name, v in times.items()}
    one, sep = t["one pass"], t[f"{len(layers)} harvests"]
    bound = t[f"model only, {len(layers)} forwards"] / t["model only, one forward"]
    blocks = sum(x + 1 for x in layers) / (max(layers) + 1)
    print(f"one pass {n / one:.0f} tokens/s vs {len(layers)} harvests {n / sep:.0f} tokens/s: x{sep / one:.2f} faster "
          f"(the target); model-only bound x{bound:.2f} measured ({blocks:.2f} by block count), "
          f"so the pass reaches {(sep / one) / bound:.0%} of it")
    whole = t[f"{len(layers)} whole-model harvests"]
    print(f"vs {len(layers)} whole-model harvests (no early stopping, not the target): {n / whole:.0f} tokens/s, x{whole / one:.2f}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
