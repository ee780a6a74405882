"""Which rule for BatchTopK's inference threshold θ gives held-out L0 = k.

θ is used only at inference (training selects the k·B largest of each batch), so the
weights do not depend on the rule: one training run records each batch's smallest
selected activation, and every candidate rule (an EMA at several rates, the last
batch's value, the mean over the last 10 %) is replayed on that record and scored on
held-out rows: L0, dead and rare (< 1e-4) latents, beside θ* (the exact threshold for
L0 = k on those rows). batchtopk and matryoshka train in one pass (train_many), on
the synthetic case (default: the screening size) or on a store.

    python benchmarks/batchtopk_threshold.py [--d 128 --n-true 2048 --latents 4096 --batch 256 --tokens 153600 --k 16]
    python benchmarks/batchtopk_threshold.py --store runs/final/activations --latents 4096 --k 32 --batch 1024 --tokens 204800
"""

from __future__ import annotations

import argparse
import time

import torch

from monosemantic.evals.synthetic import RARE_DENSITY, SyntheticConfig, SyntheticDictionary
from monosemantic.sae.batchtopk import THRESHOLD_EMA, BatchTopKSAE
from monosemantic.sae.registry import config_for
from monosemantic.train import TrainConfig, TrainJob, train_many

RATES = (0.001, 0.01, 0.03, 0.1, 0.3)


def record_minima() -> dict[int, list[float]]:
    """Patch BatchTopKSAE._update_threshold to also append each batch's smallest
    selected activation to a list per SAE (the library keeps no such history)."""
    minima: dict[int, list[float]] = {}
    update = BatchTopKSAE._update_threshold

    def recording(self, vals):
        update(self, vals)
        pos = vals[vals > 0]
        if pos.numel():
            minima.setdefault(id(self), []).append(float(pos.min()))

    BatchTopKSAE._update_threshold = recording
    return minima


def ema(values: list[float], rate: float) -> float:
    theta = values[0]                                      # the first batch sets it, as the SAE does
    for v in values[1:]:
        theta += rate * (v - theta)
    return theta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=None, help="an activation store (default: the synthetic case)")
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--n-true", type=int, default=2048)
    parser.add_argument("--latents", type=int, default=4096)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=153_600)
    parser.add_argument("--heldout", type=int, default=50_000)
    parser.add_argument("--architectures", nargs="+", default=["batchtopk", "matryoshka"])
    args = parser.parse_args()
    if args.store:
        from monosemantic.activations import open_store

        store = open_store(args.store)
        d, stream = store.d, (lambda s: store.batches(args.batch, split="train", seed=0, start_batch=s))
        heldout = store.sample(args.heldout, split="heldout")            # [N, d], scaled as in training
    else:
        truth = SyntheticDictionary(SyntheticConfig(d=args.d, n_true=args.n_true))
        d, stream = args.d, truth.batches(args.batch)
        heldout = torch.from_numpy(truth.rows(args.heldout, stream=-2))
    minima = record_minima()
    cfg = TrainConfig(n_tokens=args.tokens, batch_size=args.batch, log_every=50, checkpoint_every=0)
    jobs = [TrainJob(config_for({"architecture": a, "d_in": d, "n_latents": args.latents, "k": args.k}), cfg)
            for a in args.architectures]
    start = time.perf_counter()
    results = train_many(stream, jobs, progress=True)
    print(f"trained {len(jobs)} SAEs ({cfg.total_steps} steps, {cfg.dtype} dtype policy) in {time.perf_counter() - start:.0f} s; "
          f"held-out {heldout.shape[0]:,} rows; the SAE's own rate is {THRESHOLD_EMA}")
    print(f"{'architecture':>12} {'rule':>14} {'θ':>8} {'L0':>6} {'dead':>7} {'rare':>7}")
    for arch, result, lows in zip(args.architectures, results, minima.values()):
        sae = result.sae.eval()
        with torch.no_grad():
            pre = torch.cat([sae.pre_acts(part) for part in heldout.split(4096)])   # [N, n]
        N = pre.shape[0]
        theta_star = float(pre.flatten().kthvalue(pre.numel() - args.k * N).values)
        tail = lows[-max(1, len(lows) // 10):]
        rules = {**{f"EMA {r}": ema(lows, r) for r in RATES}, "last batch": lows[-1],
                 "mean last 10%": sum(tail) / len(tail), "θ* (L0 = k)": theta_star}
        for name, theta in rules.items():
            counts = (pre > theta).sum(0)                                  # [n] held-out rows each latent fires on
            dead, rare = counts == 0, (counts > 0) & (counts < RARE_DENSITY * N)
            print(f"{arch:>12} {name:>14} {theta:8.4f} {float(counts.sum()) / N:6.2f} "
                  f"{float(dead.float().mean()):7.2%} {float(rare.float().mean()):7.2%}", flush=True)
        print(f"{arch:>12} the SAE's θ {float(sae.threshold):.4f}; batch minimum at steps 0, 25 %, 50 %, 75 %, end: "
              + ", ".join(f"{lows[min(len(lows) - 1, i * len(lows) // 4)]:.3f}" for i in range(5)))


if __name__ == "__main__":
    main()
