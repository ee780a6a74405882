"""A 4-SAE sweep trained in one pass over the store (train.train_many) vs the same
four runs trained one after the other, side by side on the same store.

Both write real sweep directories (training, checkpoints, scoring on the held-out
sample) under --out; rounds alternate the orders so machine drift hits both. A
warm-up first pays the process's one-time costs (imports, Adam's fused kernel), which
would otherwise land on whichever case runs first.

Beside them, the bound: the four SAEs' optimiser steps alone (train_many on batches
already in memory: no store, no files, no scoring). That compute is the same in any
scheme that keeps each SAE's own step, optimiser and schedule, so sequential time /
steps-alone time is the most a one-pass sweep can gain.

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
from monosemantic.scaling.sweep import parse_spec, run_sweep, train_config
from monosemantic.train import TrainConfig
from monosemantic.train.loop import TrainJob
from monosemantic.train.many import train_many


def steps_alone(spec, store, batches: list[torch.Tensor]) -> None:
    jobs = [TrainJob(config_for({**r.sae_cfg(), "d_in": store.d, "norm_scale": store.norm_scale}), train_config(spec, r))
            for r in spec.runs]
    train_many(lambda start: (batches[k % len(batches)] for k in range(start, 1 << 40)), jobs, progress=False)


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
    batches = [next(stream).clone() for _ in range(16)]   # cycled: the step's cost does not depend on which rows
    stream.close()
    print(f"{len(spec.runs)} {args.architecture} runs: latents {args.latents} x tokens {args.tokens}, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}")
    warm = TrainJob(config_for({"architecture": args.architecture, "n_latents": 64, "d_in": store.d}),
                    TrainConfig(n_tokens=2 * args.batch, batch_size=args.batch))
    train_many(batches[:2], [warm], progress=False)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    cases = {
        "one pass": lambda: run_sweep(_fresh(out / "one-pass"), spec, progress=False, one_pass=True),
        "sequential": lambda: run_sweep(_fresh(out / "sequential"), spec, progress=False, one_pass=False),
        "SAE steps alone": lambda: steps_alone(spec, store, batches),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.rounds):
        for name in (list(cases) if r % 2 == 0 else list(cases)[::-1]):
            times[name].append(timed(cases[name]))
            print(f"round {r}: {name:16s} {times[name][-1]:7.1f} s")
    t = {name: statistics.median(v) for name, v in times.items()}
    print(f"one pass {t['one pass']:.1f} s vs sequential {t['sequential']:.1f} s: x{t['sequential'] / t['one pass']:.2f} faster")
    print(f"the SAE steps alone take {t['SAE steps alone']:.1f} s ({t['SAE steps alone'] / t['sequential']:.0%} of sequential): "
          f"no one-pass scheme that keeps each SAE's own step can beat x{t['sequential'] / t['SAE steps alone']:.2f}")
    shutil.rmtree(out, ignore_errors=True)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


if __name__ == "__main__":
    main()
