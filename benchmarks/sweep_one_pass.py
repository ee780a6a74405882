"""A 4-SAE sweep trained in one pass over the store (train.train_many) vs the same
four runs trained one after the other, side by side on the same store.

Both write real sweep directories (training, checkpoints, scoring on the held-out
sample) under --out; rounds alternate the two orders so machine drift hits both.

    python benchmarks/sweep_one_pass.py STORE [--out /tmp/sweep-bench] [--latents 512 1024] [--tokens 51200 102400]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from monosemantic.scaling.sweep import parse_spec, run_sweep


def timed(spec, out: Path, one_pass: bool) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run_sweep(out, spec, progress=False, one_pass=one_pass)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", help="an activation store (run directory or activations/)")
    parser.add_argument("--out", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--architecture", default="topk")
    parser.add_argument("--latents", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--tokens", type=int, nargs="+", default=[51_200, 102_400])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    import tempfile

    out = Path(args.out or tempfile.mkdtemp(prefix="sweep-bench-"))
    spec = parse_spec({"activations": str(Path(args.store).resolve()), "architecture": args.architecture, "batch_size": args.batch,
                       "grid": {"n_latents": args.latents, "n_tokens": args.tokens}})
    print(f"{len(spec.runs)} {args.architecture} runs: latents {args.latents} x tokens {args.tokens}, batch {args.batch}")
    one, seq = [], []
    for r in range(args.rounds):
        order = [True, False] if r % 2 == 0 else [False, True]
        for one_pass in order:
            t = timed(spec, out / ("one-pass" if one_pass else "sequential"), one_pass)
            (one if one_pass else seq).append(t)
            print(f"round {r}: {'one pass  ' if one_pass else 'sequential'} {t:7.1f} s")
    print(f"one pass {statistics.median(one):.1f} s vs sequential {statistics.median(seq):.1f} s: "
          f"x{statistics.median(seq) / statistics.median(one):.2f} faster")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
