"""SAE training throughput against a straightforward dense PyTorch step, side by side.

For `topk` and `relu` at d = 576, 16,384 latents, batch 4,096 (the issue's sizes):
  ours   - the real loop (`monosemantic.train.many.train_many`, which train_sae runs) on a
           stream of random batches (Adam, clipping, schedules, dead tracking), timed
           from the second step to the end of the last;
  plain  - the same architecture and step written here in a dozen lines of dense
           PyTorch: encode, dense decode, loss, backward, clip, Adam.
Rounds alternate A B A B so machine drift hits both; the median ratio is printed.
Also measures this machine's dense matmul rate (an [B, d] x [d, n] product) in the
same run and reports our achieved FLOP/s on the dense parts against it, two ways: the
whole step (its matrix-product FLOPs over the step's wall time, the strict reading)
and inside the dense matrix-product kernels alone (a profiled run); and the final
loss of ours in bfloat16 against float32 (the dtype choice must stay within 1 %).

    python benchmarks/train_throughput.py [--latents 16384] [--batch 4096] [--steps 3] [--rounds 2]
    python benchmarks/train_throughput.py --compare sparsify matryoshka   # train_peers.py, side by side
    python benchmarks/train_throughput.py --compare share   # TopK step / matmul rate, float32 and `auto`
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from monosemantic.allocator import keep_freed_memory
from monosemantic.sae import SAEConfig
from monosemantic.train import TrainConfig
from monosemantic.train.loop import TrainJob, resolve_dtype
from monosemantic.train.many import train_many

D = 576


def plain_step_fn(arch: str, n: int, k: int, l1: float):
    """The straightforward version: every latent decoded densely, autograd everywhere."""
    torch.manual_seed(0)
    W_dec = torch.nn.Parameter(torch.randn(n, D) / D**0.5)
    W_enc = torch.nn.Parameter(W_dec.detach().T.clone())
    b_enc, b_dec = torch.nn.Parameter(torch.zeros(n)), torch.nn.Parameter(torch.zeros(D))
    params = [W_enc, W_dec, b_enc, b_dec]
    opt = torch.optim.Adam(params, lr=1e-4)

    def step(x: torch.Tensor) -> float:
        pre = (x - b_dec) @ W_enc + b_enc if arch == "topk" else x @ W_enc + b_enc
        if arch == "topk":
            vals, idx = pre.relu().topk(k, dim=1)
            f = torch.zeros_like(pre).scatter(1, idx, vals)
        else:
            f = pre.relu()
        x_hat = f @ W_dec + b_dec
        loss = (x - x_hat).pow(2).sum(1).mean()
        if arch == "relu":
            loss = loss + l1 * (f * W_dec.norm(dim=1)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return float(loss.detach())

    return step


def time_plain(arch, n, k, batches) -> float:
    step = plain_step_fn(arch, n, k, 5.0)
    step(batches[0])  # warm-up
    start = time.perf_counter()
    for x in batches:
        step(x)
    return time.perf_counter() - start


def time_ours(arch, n, k, batches, dtype="float32") -> tuple[float, float]:
    """Seconds of our training steps after a warm-up step (the real loop: train_many,
    whose `on_done` stops the clock at the last step, before the SAE is converted to
    raw units as train_sae then does), and the final loss."""
    B = batches[0].shape[0]
    # A dead window longer than the run: no latent is dead, so no AuxK pass, as in the
    # plain and sparsify steps it is compared with (a one-batch window would call most
    # of 16,384 latents dead after step 1 and time AuxK too).
    cfg = TrainConfig(n_tokens=B * (len(batches) + 1), batch_size=B, lr=1e-4, log_every=len(batches) + 1, checkpoint_every=0,
                      dtype=dtype, dead_window_tokens=10 * B * (len(batches) + 1))
    sae_cfg = SAEConfig(architecture=arch, d_in=D, n_latents=n, k=k)
    stream = [batches[0]] + batches  # the first step (init from data) is the warm-up
    clock = [0.0, 0.0]

    def timed_stream():
        for i, x in enumerate(stream):
            if i == 1:
                clock[0] = time.perf_counter()
            yield x

    def done(_i, _result):
        clock[1] = time.perf_counter()

    result = train_many(timed_stream(), [TrainJob(sae_cfg, cfg)], progress=False, on_done=done)[0]
    return clock[1] - clock[0], result.last_metrics.get("loss", float("nan"))


def matmul_rate(B: int, n: int, dtype: str = "float32") -> float:
    """FLOP/s of one [B, d] x [d, n] product, in `dtype` (bfloat16: the operands in
    bfloat16, as autocast gives the encoder's matmul)."""
    dt = getattr(torch, dtype)
    a, b = torch.randn(B, D).to(dt), torch.randn(D, n).to(dt)
    a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        a @ b
        reps += 1
    return 2 * B * D * n * reps / (time.perf_counter() - start)


def share_of_matmul_rate(n: int, k: int, batches, rounds: int) -> None:
    """Our TopK step's dense-part FLOP/s over this machine's matmul rate, in float32
    and in the dtype `auto` picks. Each round measures the rate just before and just
    after the steps (a shared machine's load drifts) and divides by their mean; the
    median over rounds is printed."""
    B, steps = batches[0].shape[0], len(batches)
    flops = dense_flops("topk", B, n, k) * steps
    for dtype in dict.fromkeys(["float32", resolve_dtype("auto", "topk")]):
        shares, times, rates = [], [], []
        for _ in range(rounds):
            before = matmul_rate(B, n, dtype)
            t = time_ours("topk", n, k, batches, dtype)[0]
            rate = (before + matmul_rate(B, n, dtype)) / 2
            shares.append(flops / t / rate)
            times.append(t)
            rates.append(rate)
        label = "auto = " + dtype if dtype != "float32" else "float32"
        print(f"topk n={n} B={B} ({label}): step {statistics.median(times) / steps:.3f} s, matmul rate "
              f"{statistics.median(rates) / 1e9:.1f} GFLOP/s -> dense-part FLOP/s {statistics.median(shares):.0%} of the matmul rate "
              f"(rounds: {', '.join(f'{v:.0%}' for v in shares)})")


def dense_flops(arch: str, B: int, n: int, k: int) -> float:
    """FLOPs of the matrix products our step performs (Adam and elementwise excluded)."""
    mm = 2 * B * D * n
    if arch == "topk":  # dense encoder forward; decoder and both backward products touch k latents per row
        return mm + 3 * 2 * B * k * D
    return 5 * mm  # encoder fwd, decoder fwd, dW_dec, d(acts), dW_enc


def matmul_share(arch: str, n: int, k: int, batches) -> tuple[float, float]:
    """One profiled run of ours: (FLOP/s inside its dense matrix-product kernels, the
    fraction of the run's CPU time spent in them). Dense = an mm/addmm whose operands
    are the full [B, d] x [d, n] (encoder), [B, n] x [n, d] (decoder) or their
    gradients; the sparse kernels (embedding_bag, sparse mm, SDDMM) count as outside."""
    from torch.profiler import ProfilerActivity, profile

    B = batches[0].shape[0]
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        time_ours(arch, n, k, batches)
    events = prof.key_averages(group_by_input_shape=True)
    flops = seconds = 0.0
    for e in events:
        if e.key not in ("aten::mm", "aten::addmm"):
            continue
        shapes = [tuple(s) for s in e.input_shapes if len(s) in (1, 2)]
        if e.key == "aten::addmm":
            if len(shapes[0]) != 1:
                continue  # torch.sparse.mm's addmm into a dense [n, d] result: a sparse product
            shapes = shapes[1:]
        if len(shapes) < 2 or len(shapes[0]) != 2 or len(shapes[1]) != 2:
            continue
        (p, q), (_, r) = shapes[0], shapes[1]
        if sorted((p, q, r)) == sorted((B, D, n)):  # a full [B,d]x[d,n]-sized product, in any arrangement
            flops += 2 * B * D * n * e.count
            seconds += e.self_cpu_time_total / 1e6
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    return flops / max(seconds, 1e-9), seconds / max(total, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latents", type=int, default=16384)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare", nargs="*", default=None, choices=["sparsify", "matryoshka", "share"],
                        help="only these side-by-side comparisons (benchmarks/train_peers.py): our topk vs sparsify's "
                        "at 4,096 and --latents latents; matryoshka vs batchtopk at --latents; share: our topk step's "
                        "dense-part FLOP/s over the matmul rate, float32 and the dtype `auto` picks")
    args = parser.parse_args()
    keep_freed_memory()   # as train_many and the CLI do; from the start, so every step compared runs under it
    n, B, k = args.latents, args.batch, args.k
    torch.manual_seed(0)
    batches = [torch.randn(B, D) for _ in range(args.steps)]
    print(f"d={D} latents={n} batch={B} k={k} threads={torch.get_num_threads()} steps={args.steps} rounds={args.rounds}")
    if args.compare is not None:
        from train_peers import compare_matryoshka, compare_sparsify

        if "sparsify" in args.compare:
            compare_sparsify(time_ours, D, sorted({4096, n}), k, batches, args.rounds)
        if "matryoshka" in args.compare:
            compare_matryoshka(time_ours, n, k, batches, args.rounds)
        if "share" in args.compare:
            share_of_matmul_rate(n, k, batches, args.rounds)
        return
    rate = matmul_rate(B, n)
    print(f"dense matmul rate ([B,d]x[d,n], float32): {rate / 1e9:.1f} GFLOP/s")
    for arch in ("topk", "relu"):
        ratios, ours_t, plain_t = [], [], []
        for _ in range(args.rounds):
            t_ours, _ = time_ours(arch, n, k, batches)
            t_plain = time_plain(arch, n, k, batches)
            ours_t.append(t_ours)
            plain_t.append(t_plain)
            ratios.append(t_plain / t_ours)
        tok = B * args.steps
        med = statistics.median(ours_t)
        achieved = dense_flops(arch, B, n, k) * args.steps / med
        print(f"{arch:5s} ours {tok / med:8.0f} tok/s  plain {tok / statistics.median(plain_t):8.0f} tok/s  "
              f"speed-up x{statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})  "
              f"dense-part FLOP/s {achieved / 1e9:.1f} G = {achieved / rate:.0%} of the matmul rate")
        in_mm, share = matmul_share(arch, n, k, batches)
        print(f"{'':5s} inside its dense matrix products (profiled run): {in_mm / 1e9:.1f} GFLOP/s = {in_mm / rate:.0%} of the "
              f"matmul rate; they take {share:.0%} of the step's CPU time")
    for arch in ("topk", "relu"):
        t32, l32 = time_ours(arch, n, k, batches, "float32")
        t16, l16 = time_ours(arch, n, k, batches, "bfloat16")
        print(f"{arch:5s} bfloat16 autocast: x{t32 / t16:.2f} the float32 speed, final loss {l16:.4g} vs {l32:.4g} "
              f"({abs(l16 - l32) / abs(l32):.2%} apart)")


if __name__ == "__main__":
    main()
