"""Side-by-side training-step timings used by train_throughput.py --compare:
our TopK against sparsify's (PyPI eai-sparsify, the fastest peer measured on these
CPUs) on the same batches, and matryoshka against batchtopk at the same width.

sparsify's step is its trainer's, written out: SparseCoder.forward (TopK encoder with
its sparse backward, AuxK on dead latents), fvu + auxk_alpha·auxk backward, the
gradient parallel to the decoder rows removed, Adam, decoder rows renormalised."""

from __future__ import annotations

import statistics
import time

import torch


def sparsify_step_fn(d: int, n: int, k: int, lr: float = 1e-4, bf16: bool = False):
    """sparsify's training step. Its own bf16 autocast is CUDA-only (SparseCoder.forward
    is wrapped in torch.autocast("cuda", enabled=torch.cuda.is_bf16_supported())), so
    on a CPU it trains in float32; `bf16` wraps its forward in a CPU bf16 autocast,
    a mode sparsify does not offer, for a same-dtype comparison with ours."""
    import contextlib

    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(0)
    sae = SparseCoder(d, SparseCoderConfig(num_latents=n, k=k))
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    dead = torch.zeros(n, dtype=torch.bool)

    def step(x: torch.Tensor) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            out = sae(x, dead_mask=dead)
        loss = out.fvu + (1 / 32) * out.auxk_loss
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sae.set_decoder_norm_to_unit_norm()
        return float(loss.detach())

    return step


def time_steps(step, batches) -> float:
    step(batches[0])  # warm-up
    start = time.perf_counter()
    for x in batches:
        step(x)
    return time.perf_counter() - start


def compare_sparsify(time_ours, d: int, widths: list[int], k: int, batches, rounds: int) -> None:
    """Our topk (train_sae in float32 and in the dtype `auto` picks) vs sparsify's, A B A B."""
    from monosemantic.train.loop import resolve_dtype

    auto = resolve_dtype("auto", "topk")
    tok = batches[0].shape[0] * len(batches)
    for n in widths:
        ours32, ours_auto, peer, peer16 = [], [], [], []
        for _ in range(rounds):
            ours32.append(time_ours("topk", n, k, batches, "float32")[0])
            ours_auto.append(time_ours("topk", n, k, batches, auto)[0] if auto != "float32" else ours32[-1])
            peer.append(time_steps(sparsify_step_fn(d, n, k), batches))
            if auto == "bfloat16":
                peer16.append(time_steps(sparsify_step_fn(d, n, k, bf16=True), batches))
        o32, oa, p = (statistics.median(v) for v in (ours32, ours_auto, peer))
        print(f"topk n={n:6d}: ours float32 {tok / o32:7.0f} tok/s, ours auto ({auto}) {tok / oa:7.0f} tok/s, "
              f"sparsify float32 {tok / p:7.0f} tok/s -> ours/sparsify x{p / o32:.2f} (float32), x{p / oa:.2f} "
              f"(ours auto vs sparsify's CPU default, float32)")
        if peer16:
            p16 = statistics.median(peer16)
            print(f"{'':13s} sparsify under a CPU bf16 autocast (not one of its modes) {tok / p16:7.0f} tok/s -> "
                  f"ours bf16 / sparsify bf16 x{p16 / oa:.2f}")


def compare_matryoshka(time_ours, n: int, k: int, batches, rounds: int) -> None:
    """Step time of matryoshka (default 4 prefixes) over batchtopk's, same width, float32, A B A B."""
    mat, btk = [], []
    for _ in range(rounds):
        btk.append(time_ours("batchtopk", n, k, batches, "float32")[0])
        mat.append(time_ours("matryoshka", n, k, batches, "float32")[0])
    m, b = statistics.median(mat), statistics.median(btk)
    print(f"matryoshka n={n}: step {m / len(batches):.3f} s vs batchtopk {b / len(batches):.3f} s -> x{m / b:.2f} batchtopk's time")
