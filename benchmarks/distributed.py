"""Step time of SAE training on 1 process vs 2 gloo ranks (data parallel and feature
sharded) and 4 ranks as a 2 x 2 data x feature mesh, side by side in one run, and
the share of each step spent in collectives.

Every configuration runs the real loop (`train_sae` with the scheme's hooks) under
torchrun on the same random batches (d 576 by default). Collectives are timed by
wrapping torch.distributed's all_reduce / all_gather / broadcast / barrier: their
time includes waiting for the slower rank, so on a shared machine "communication"
also holds load imbalance. Bytes per step are the payloads those calls moved (on
the slowest rank), beside the payload formula of docs/distributed.md ("formula MB":
gradient buckets, x̂'s partials, TopK's candidates; scalars left out).
Configurations alternate (1, data, feature, 1, ...) so machine drift hits each.

    python benchmarks/distributed.py [--latents 4096] [--batch 1024] [--steps 12] [--rounds 2] [--arch relu|topk|jumprelu]
    python benchmarks/distributed.py --backend nccl ...   # on GPUs: benchmarks/distributed_gpu.sh

On 2 cores two ranks share the cores one process had (OMP threads 2 -> 1 each):
no speed-up is possible; what the numbers show is the overhead of each scheme.
"1 process, 1 thread" is the per-rank compute of the 2-rank runs, for reference.

`--backend nccl` (GPUs): 1 GPU vs 2 GPUs data parallel (each rank on cuda:LOCAL_RANK,
World.device; the 2-GPU row needs two GPUs). Collectives are timed between CUDA
synchronisations, so their time is the transfer (plus waiting), not the launch.
Feature sharding is not in this mode: its collectives still run on CPU tensors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

D = 576


def _sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def _instrument(totals: dict, cuda: bool) -> None:
    for name in ("all_reduce", "all_gather", "broadcast", "barrier", "all_gather_object", "broadcast_object_list"):
        original = getattr(dist, name)

        def timed(*args, _original=original, **kwargs):
            _sync(cuda)
            t0 = time.perf_counter()
            out = _original(*args, **kwargs)
            _sync(cuda)
            totals["seconds"] += time.perf_counter() - t0
            tensors = [a for a in args if torch.is_tensor(a)] + [t for a in args if isinstance(a, list) for t in a if torch.is_tensor(t)]
            totals["bytes"] += sum(t.numel() * t.element_size() for t in tensors[:1])  # the payload, once
            return out

        setattr(dist, name, timed)


def worker(args) -> None:
    from monosemantic.distributed import init_world
    from monosemantic.sae import SAEConfig
    from monosemantic.scaling.flops import config_step_flops
    from monosemantic.train import TrainConfig, train_sae
    from monosemantic.train.distributed import DataParallel, make_parallel

    world = init_world(args.backend)
    cuda = world.device.type == "cuda"
    totals = {"seconds": 0.0, "bytes": 0}
    _instrument(totals, cuda)
    sae_cfg = SAEConfig(args.arch, d_in=D, n_latents=args.latents, k=32)
    steps = args.steps + 2  # two warm-up steps, not timed
    cfg = TrainConfig(n_tokens=steps * args.batch, batch_size=args.batch, dtype="float32", checkpoint_every=0, log_every=10**9)
    # one GPU: the data-parallel hooks of a 1-rank world, which put the SAE on cuda:0
    hooks = DataParallel(world, args.batch) if cuda and not world.distributed else make_parallel(args.scheme, world, args.batch, 2 if args.scheme == "mesh" else None)
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(args.batch, D, generator=g) for _ in range(steps)]
    rows = (world.rank, world.size) if hooks.scheme == "data" else getattr(hooks, "row_slice", None)
    if rows is not None:  # this rank's rows of every global batch
        per = args.batch // rows[1]
        batches = [b[rows[0] * per : (rows[0] + 1) * per] for b in batches]
    marks: list[tuple[float, float, int]] = []

    def stream(start):
        for i, b in enumerate(batches[start:]):
            _sync(cuda)
            marks.append((time.perf_counter(), totals["seconds"], totals["bytes"]))
            yield b

    train_sae(stream, sae_cfg, cfg, progress=False, parallel=hooks)
    _sync(cuda)
    marks.append((time.perf_counter(), totals["seconds"], totals["bytes"]))
    t0, c0, b0 = marks[3]  # stream items: [first (init), 0, 1, 2, ...]: time from step 2 on
    t1, c1, b1 = marks[-1]
    timed = len(marks) - 4
    result = {"step_s": (t1 - t0) / timed, "comm_s": (c1 - c0) / timed, "bytes": (b1 - b0) / timed,
              "flops": config_step_flops(sae_cfg, args.batch)}
    gathered = world.all_gather_object(result)
    if world.is_main:
        worst = max(gathered, key=lambda r: r["step_s"])
        Path(args.out).write_text(json.dumps(worst))


def payload_bytes(scheme: str, arch: str, n: int, d: int, batch: int, k: int, nproc: int) -> float:
    """What one rank hands to collectives per step (docs/distributed.md), scalars left
    out: gradient buckets (+ the uint8 fired flags), x̂'s partials, TopK's candidates."""
    if nproc == 1:
        return 0.0
    F = 2 if scheme == "mesh" else nproc if scheme == "feature" else 1
    D = nproc // F
    per_latent = 2 * d + 1 + (arch == "jumprelu")                       # W_enc column, W_dec row, b_enc (, log θ)
    out = 0.0
    if D > 1:
        out += (per_latent * n / F + d) * 4 + n / F                      # the shard's gradient bucket, fired flags
    if F > 1:
        rows = batch / D
        out += rows * d * 4                                              # x̂'s partials
        if arch == "topk":
            out += rows * min(k, n / F) * 4 + d * 4                      # candidates; b_dec's gradient at the encoder input
    return out


def launch(scheme: str, nproc: int, args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(abs(nproc)), __file__,
           "--worker", "--scheme", scheme, "--out", str(out), "--latents", str(args.latents), "--batch", str(args.batch),
           "--steps", str(args.steps), "--arch", args.arch, "--backend", args.backend]
    threads = "1" if nproc < 0 else str(max(1, (os.cpu_count() or 1) // nproc))
    nproc = abs(nproc)
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": threads}, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"{scheme} on {nproc} rank(s) failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--latents", type=int, default=4096)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--arch", default="relu", choices=["relu", "topk", "jumprelu"])
    p.add_argument("--backend", default="gloo", choices=["gloo", "nccl"], help="gloo: CPU ranks (default); nccl: one GPU per rank")
    p.add_argument("--worker", action="store_true")
    p.add_argument("--scheme", default="data")
    p.add_argument("--out", default="")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    configs = [("1 process", "data", 1), ("1 process, 1 thread", "data", -1),
               ("2 ranks, data parallel", "data", 2), ("2 ranks, feature sharded", "feature", 2),
               ("4 ranks, 2 x 2 mesh", "mesh", 4)]
    if args.backend == "nccl":
        gpus = torch.cuda.device_count()
        if gpus == 0:
            sys.exit("--backend nccl needs CUDA GPUs and torch sees none")
        configs = [("1 GPU", "data", 1)] + ([("2 GPUs, data parallel", "data", 2)] if gpus >= 2 else [])
        if gpus < 2:
            print(f"{gpus} GPU: the 2-GPU row needs two (NCCL refuses two ranks on one GPU)")
    results: dict[str, list[dict]] = {name: [] for name, _, _ in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, scheme, nproc in configs:
                results[name].append(launch(scheme, nproc, args, Path(tmp) / f"{r}-{scheme}-{nproc}.json"))
    print(f"{args.arch}, d {D}, {args.latents:,} latents, global batch {args.batch:,}, {args.steps} timed steps x {args.rounds} rounds, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, {args.backend}"
          + (f", {torch.cuda.get_device_name(0)}" if args.backend == "nccl" else ""))
    print(f"{'configuration':<26} {'step ms':>8} {'comm ms':>8} {'comm share':>10} {'MB/step':>8} {'formula MB':>10} {'GFLOP/s':>8}")
    base = statistics.median(x["step_s"] for x in results[configs[0][0]])
    for name, scheme, nproc in configs:
        step = statistics.median(x["step_s"] for x in results[name])
        comm = statistics.median(x["comm_s"] for x in results[name])
        mb = statistics.median(x["bytes"] for x in results[name]) / 1e6
        formula = payload_bytes(scheme, args.arch, args.latents, D, args.batch, 32, abs(nproc)) / 1e6
        flops = results[name][0]["flops"]
        print(f"{name:<26} {step * 1e3:>8.1f} {comm * 1e3:>8.1f} {comm / step:>10.1%} {mb:>8.2f} {formula:>10.2f} {flops / step / 1e9:>8.1f}")
    for name, _, nproc in configs:
        if nproc > 1:
            step = statistics.median(x["step_s"] for x in results[name])
            print(f"ratio step time {configs[0][0]} / {name}: x{base / step:.2f}")


if __name__ == "__main__":
    main()
