"""Matryoshka vs BatchTopK on a real store: held-out FVE when only the first w
latents are kept (w = the default prefix widths), one pass over the same batches.

    python benchmarks/matryoshka_prefixes.py STORE [--latents 2048] [--tokens 153600]
"""

from __future__ import annotations

import argparse
import time

import torch

from monosemantic.activations import open_store
from monosemantic.sae.matryoshka import default_widths
from monosemantic.sae.registry import config_for
from monosemantic.train import TrainConfig, TrainJob, train_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--latents", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=153_600)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--k", type=int, default=32)
    args = parser.parse_args()
    store = open_store(args.store)
    n, B = args.latents, args.batch
    cfg = TrainConfig(n_tokens=args.tokens, batch_size=B, checkpoint_every=0, log_every=50, dtype="float32")
    jobs = [TrainJob(config_for({"architecture": a, "d_in": store.d, "n_latents": n, "k": args.k, "norm_scale": store.norm_scale}), cfg)
            for a in ("batchtopk", "matryoshka")]
    t0 = time.time()
    results = train_many(lambda s: store.batches(B, split="train", seed=0, start_batch=s), jobs, progress=True)
    print(f"trained both in {time.time() - t0:.0f} s")
    x = store.sample(8192, split="heldout", seed=0)                       # [N, d], scaled
    widths = default_widths(n)
    for job, r in zip(jobs, results):
        sae = r.sae.eval()
        with torch.no_grad():
            f = sae.encode(x)
            total = (x - x.mean(0)).pow(2).sum()
            fves = []
            for w in widths:
                g = f.clone()
                g[:, w:] = 0
                fves.append(float(1 - (x - sae.decode(g)).pow(2).sum() / total))
            dead = float(((f > 0).sum(0) == 0).float().mean())
        print(f"{job.sae_cfg.architecture:10s} held-out FVE, first {'/'.join(map(str, widths))} latents: "
              + " ".join(f"{v:.3f}" for v in fves) + f"  L0 {float((f > 0).sum(1).float().mean()):.1f}  dead {dead:.1%}")


if __name__ == "__main__":
    main()
