"""A default checked on the real store, not only on the synthetic case: SAEs of
given architectures and learning rates trained in one pass over the same batches of
a store (train_many), then held-out FVE, L0 and dead/rare latents (never fired / on
< 1e-4 of the held-out rows), side by side. At equal k (the TopK family) L0 is equal.

    python benchmarks/store_defaults.py STORE [--architectures topk batchtopk] [--lrs 1e-3 3e-3]
        [--latents 4096] [--k 32] [--tokens 204800] [--heldout 15000] [--set ARCH.FIELD=VALUE ...]
"""

from __future__ import annotations

import argparse
import time

import torch

from synthetic_recovery import parse_overrides

from monosemantic.activations import open_store
from monosemantic.evals.reconstruction import reconstruction_stats
from monosemantic.evals.synthetic import RARE_DENSITY
from monosemantic.sae.registry import config_for
from monosemantic.train import TrainConfig, TrainJob, train_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", help="an activation store (a run's activations/ folder)")
    parser.add_argument("--architectures", nargs="+", default=["topk", "batchtopk"])
    parser.add_argument("--lrs", nargs="+", type=float, default=[TrainConfig.lr], help="peak learning rates, each run with every architecture")
    parser.add_argument("--latents", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=204_800)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--heldout", type=int, default=15_000)
    parser.add_argument("--warmup", type=float, default=None, help="TrainConfig.lr_warmup_fraction (default: TrainConfig's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="ARCH.FIELD=VALUE", help="override an SAEConfig field of one architecture")
    args = parser.parse_args()
    store = open_store(args.store)
    overrides = parse_overrides(args.set)
    runs = [(arch, lr) for arch in args.architectures for lr in args.lrs]
    jobs = [TrainJob(config_for({"architecture": arch, "d_in": store.d, "n_latents": args.latents, "k": args.k,
                                 **overrides.get(arch, {})}),
                     TrainConfig(n_tokens=args.tokens, batch_size=args.batch, lr=lr, log_every=50, checkpoint_every=0,
                                 **({} if args.warmup is None else {"lr_warmup_fraction": args.warmup})))
            for arch, lr in runs]
    start = time.perf_counter()
    results = train_many(lambda s: store.batches(args.batch, split="train", seed=0, start_batch=s), jobs, progress=True)
    print(f"trained {len(jobs)} SAEs of {args.latents} latents on {args.tokens:,} tokens of {args.store} in one pass: "
          f"{time.perf_counter() - start:.0f} s")
    x = store.sample(args.heldout, split="heldout")                        # [N, d], scaled as in training
    print(f"{'architecture':>12} {'lr':>8} {'FVE':>7} {'L0':>6} {'dead':>7} {'rare':>7}  (held-out, {x.shape[0]:,} rows)")
    for (arch, lr), result in zip(runs, results):
        sae = result.sae.eval()
        stats = reconstruction_stats(sae, x.split(4096))
        with torch.no_grad():
            counts = sum((sae.encode(part) > 0).sum(0) for part in x.split(4096))    # [n]
        dead = counts == 0
        rare = ~dead & (counts < RARE_DENSITY * x.shape[0])
        print(f"{arch:>12} {lr:8.1e} {stats.fve:7.4f} {stats.l0:6.1f} {float(dead.float().mean()):7.2%} {float(rare.float().mean()):7.2%}", flush=True)


if __name__ == "__main__":
    main()
