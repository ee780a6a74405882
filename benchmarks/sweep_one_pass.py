"""A 4-SAE sweep trained in one pass over the store (train.train_many) vs the same
four runs trained one after the other, side by side on the same store.

Every case writes a real sweep directory (training, checkpoints, scoring on the
held-out sample) under --out; rounds alternate the orders so machine drift hits all.
A warm-up first pays the process's one-time costs (imports, Adam's fused kernel),
which would otherwise land on whichever case runs first. The cases:

- one pass: the default (`sweep`): one data stream, and the SAEs of a step run at
  once on worker threads, one per intra-op thread (train/concurrent.py);
- one pass, one SAE at a time (workers=1): what sharing the stream alone gives;
- sequential: the four runs one after the other, each on every thread;
- --jobs 2: two runs at a time in worker processes (`sweep --jobs 2`), the other way
  to keep two cores busy with small SAEs; shown so that the one-pass figure can be
  read against it.

    python benchmarks/sweep_one_pass.py STORE [--out /tmp/sweep-bench] [--latents 512 1024] [--tokens 51200 102400]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from monosemantic.activations import open_store
from monosemantic.sae.registry import config_for
from monosemantic.scaling.sweep import parse_spec, run_sweep
from monosemantic.train import TrainConfig
from monosemantic.train.loop import TrainJob
from monosemantic.train.many import train_many


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

    out = Path(args.out or tempfile.mkdtemp(prefix="sweep-bench-"))
    spec = parse_spec({"activations": str(Path(args.store).resolve()), "architecture": args.architecture, "batch_size": args.batch,
                       "grid": {"n_latents": args.latents, "n_tokens": args.tokens}})
    store = open_store(spec.activations)
    stream = store.batches(args.batch, split="train", seed=spec.seed)
    batches = [next(stream).clone() for _ in range(2)]
    stream.close()
    print(f"{len(spec.runs)} {args.architecture} runs: latents {args.latents} x tokens {args.tokens}, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}")
    warm = [TrainJob(config_for({"architecture": args.architecture, "n_latents": 64, "d_in": store.d}),
                     TrainConfig(n_tokens=2 * args.batch, batch_size=args.batch)) for _ in range(2)]
    train_many(batches, warm[:1], progress=False)   # one SAE alone, and two stepped at once
    train_many(batches, warm, progress=False)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    cases = {
        "one pass": lambda: run_sweep(_fresh(out / "one-pass"), spec, progress=False, one_pass=True),
        "one pass, 1 at a time": lambda: run_sweep(_fresh(out / "one-pass-1"), spec, progress=False, one_pass=True, workers=1),
        "sequential": lambda: run_sweep(_fresh(out / "sequential"), spec, progress=False, one_pass=False),
        "--jobs 2": lambda: run_sweep(_fresh(out / "jobs-2"), spec, progress=False, jobs=2),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.rounds):
        for name in (list(cases) if r % 2 == 0 else list(cases)[::-1]):
            times[name].append(timed(cases[name]))
            print(f"round {r}: {name:22s} {times[name][-1]:7.1f} s")
    t = {name: statistics.median(v) for name, v in times.items()}
    for name in cases:
        print(f"{name:22s} {t[name]:7.1f} s   sequential / this: x{t['sequential'] / t[name]:.2f}")
    print(f"one pass vs sequential: x{t['sequential'] / t['one pass']:.2f} faster "
          f"(x{t['sequential'] / t['one pass, 1 at a time']:.2f} from the shared stream alone, "
          f"x{t['--jobs 2'] / t['one pass']:.2f} over --jobs 2)")
    shutil.rmtree(out, ignore_errors=True)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


if __name__ == "__main__":
    main()
