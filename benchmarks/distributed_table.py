"""The predicted table of docs/distributed.md: memory per rank and step time of
feature-sharded training for large dictionaries, from a measured single-rank FLOP
rate (benchmarks/distributed.py prints it) and a stated link bandwidth.

    python benchmarks/distributed_table.py --gflops 20 [--bandwidth-gbs 12.5] [--batch 4096] [--rank-gib 64] [--data-groups D]

Model (per step, global batch B, n latents, width d, N ranks along the features):
  state per rank    (2·n·d + n)·4 B x 4 (weights, gradients, Adam's two moments) / N + d·16 B
  activations       ReLU: pre-activations, f and ∂f, 3·B·(n/N)·4 B (TopK: 1·B·(n/N)·4 B)
  compute per rank  step FLOPs (scaling/flops.py) / N at the measured rate
  communication     ring all-reduce of x̂'s partials, 2·(N-1)/N · B·d·4 B per rank
                    (+ TopK: all-gather of (N-1)·B·k·4 B candidates, b_dec's gradient)
  N                 the smallest power of two that fits state + activations in --rank-gib
With --data-groups D (the data x feature mesh, D·N ranks): each feature group takes
B/D rows (compute and activations / D, x̂'s partials on B/D rows) and every shard's
gradients are all-reduced across its D replicas, 2·(D-1)/D · ((2d+1)·n/N + d)·4 B.
Step time = compute + communication (no overlap assumed: an upper bound)."""

from __future__ import annotations

import argparse

from monosemantic.scaling.flops import step_flops

GIB = 2**30


def predict(arch: str, n: int, d: int, batch: int, gflops: float, bandwidth: float, rank_bytes: float, k: int = 32,
            groups: int = 1) -> dict:
    size, rows = 1, batch / groups                                       # rows: one feature group's share of the batch
    while True:
        state = (2 * n * d + n) * 4 * 4 / size + d * 16
        acts = (3 if arch == "relu" else 1) * rows * (n / size) * 4
        if state + acts <= rank_bytes:
            break
        size *= 2
    flops = step_flops(arch, d, n, batch, k).total
    compute = flops / size / groups / (gflops * 1e9)
    comm_bytes = 2 * (size - 1) / size * rows * d * 4
    if arch == "topk":
        comm_bytes += (size - 1) * rows * k * 4 + 2 * (size - 1) / size * d * 4
    comm_bytes += 2 * (groups - 1) / groups * ((2 * d + 1) * n / size + d) * 4  # the shard's gradients over its replicas
    dp_bytes = 2 * (2 * n * d + n + d) * 4  # for reference: what one data-parallel all-reduce would move (ring, large N)
    return {"ranks": size * groups, "feature_ranks": size, "state_gib": state / GIB, "acts_gib": acts / GIB, "compute_s": compute,
            "comm_s": comm_bytes / (bandwidth * 1e9), "comm_mb": comm_bytes / 1e6, "dp_gb": dp_bytes / 1e9}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--gflops", type=float, required=True, help="measured single-rank training rate, GFLOP/s")
    p.add_argument("--bandwidth-gbs", type=float, default=12.5, help="link bandwidth per rank, GB/s (12.5 = 100 Gb/s)")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--rank-gib", type=float, default=64.0, help="memory per rank for state + activations")
    p.add_argument("--arch", default="relu", choices=["relu", "topk"])
    p.add_argument("--data-groups", type=int, default=1, help="D: copies of the sharded dictionary, each on B/D rows (the mesh)")
    a = p.parse_args()
    print(f"{a.arch}, batch {a.batch:,}, {a.gflops:g} GFLOP/s per rank, {a.bandwidth_gbs:g} GB/s links, <= {a.rank_gib:g} GiB per rank, "
          f"{a.data_groups} data group(s)")
    print("| latents | d | ranks (D x F) | state / rank GiB | activations / rank GiB | compute s/step | comm MB/step/rank | comm s/step | step s | DP all-reduce GB/step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d in (576, 4096):
        for n in (1 << 20, 4 << 20, 34_000_000):
            r = predict(a.arch, n, d, a.batch, a.gflops, a.bandwidth_gbs, a.rank_gib * GIB, groups=a.data_groups)
            print(f"| {n / 1e6:.0f}M | {d:,} | {a.data_groups} x {r['feature_ranks']} | {r['state_gib']:.1f} | {r['acts_gib']:.1f} | {r['compute_s']:.2f} | "
                  f"{r['comm_mb']:.1f} | {r['comm_s']:.3f} | {r['compute_s'] + r['comm_s']:.2f} | {r['dp_gb']:.1f} |")


if __name__ == "__main__":
    main()
