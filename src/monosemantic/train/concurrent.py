"""Stepping the SAEs of one pass concurrently, one per worker thread.

On a CPU one SAE's step scales poorly over the intra-op threads: at the sweep
benchmark's sizes (d 576, 512-1,024 latents, batch 1,024) two threads ran the steps
only x1.4 faster than one. N SAEs trained in one pass are independent given the
batch, so they step at once on min(N, threads) worker threads, each op on
threads // workers intra-op threads (torch releases the GIL inside its ops). Each
SAE's weights stay those of training it alone: a step reads the shared batch and
writes only its own SAE, optimiser and files (the one shared scratch buffer,
sparse_topk's, is per thread)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import torch

from .distributed import Single


def worker_count(trainers: list, workers: int | None) -> int:
    """How many SAEs step at once: `workers`, or by default one per intra-op thread
    (torch.get_num_threads(), which OMP_NUM_THREADS sets) up to the number of SAEs.
    One process on the CPU only: ranks' collectives must keep their order, and a
    GPU runs one SAE's kernels without help."""
    single = all(type(t.parallel) is Single and t.parallel.world.size == 1 and t.parallel.device.type == "cpu" for t in trainers)
    if not single or len(trainers) < 2:
        return 1
    return max(1, min(len(trainers), workers if workers is not None else torch.get_num_threads()))


class ConcurrentSteps:
    """A pool of worker threads that steps several trainers on one batch. The intra-op
    thread count is per thread (OpenMP's and MKL's): the workers set theirs, and the
    calling thread keeps all of its own for what runs between steps (saving and
    scoring a finished SAE, a last SAE stepping alone)."""

    def __init__(self, workers: int):
        self.threads = torch.get_num_threads()
        self.per_worker = max(1, self.threads // workers)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="sae-step", initializer=torch.set_num_threads,
                                       initargs=(self.per_worker,))

    def step(self, trainers: list, step: int, x: torch.Tensor, share: float) -> None:
        if len(trainers) == 1:   # the others have finished: the last one gets every thread
            trainers[0].step(step, x, share)
            return
        # A step never draws random numbers (its trainer's generator state is only
        # restored for safety when stepping alone), so the global generator must be
        # untouched; a step that drew would make the result depend on thread timing.
        before = torch.get_rng_state()
        clocks = [t.elapsed for t in trainers]
        t0 = time.perf_counter()
        # Largest first: the pool hands each SAE to the worker that frees up first, so the
        # small ones fill the gaps (a sweep of 512 ... 4,096 latents smallest first left one
        # worker with the two largest).
        by_cost = sorted(trainers, key=lambda t: t.step_cost, reverse=True)
        futures = [self.pool.submit(t.step, step, x, share, own_rng=False) for t in by_cost]
        for f in futures:
            f.result()
        wall = time.perf_counter() - t0
        if not torch.equal(before, torch.get_rng_state()):
            raise RuntimeError("an SAE's training step drew random numbers, so SAEs cannot step concurrently: "
                               "train_many(..., workers=1)")
        # Each clock counted its own step's duration, though the steps overlapped; split
        # the step's wall time in proportion instead, so that the clocks of a pass add up
        # to its wall time (the sweep's FLOP/s estimate, scaling/sweep.py, pools them).
        own = [t.elapsed - c - share for t, c in zip(trainers, clocks)]
        total = sum(own)
        for t, c, o in zip(trainers, clocks, own):
            t.elapsed = c + share + (wall * o / total if total > 0 else wall / len(trainers))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        torch.set_num_threads(self.threads)   # the workers' setting became the default of new threads
