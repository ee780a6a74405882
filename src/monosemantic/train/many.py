"""Many SAEs, one pass: N SAEs of any architectures and sizes trained on the same
batches, each with its own optimiser, schedule, checkpoint and resume.

The data pipeline (reading, shuffling, scaling a batch) is paid once per step
instead of once per SAE, the way sparsify trains every layer's SAE from one forward
pass and SAELens's multi-SAE runner shares one activation stream. Each SAE gets the
same weights as training it alone on the same stream (tests/train/test_many.py):
its trainer keeps its own random state and sees exactly its own steps."""

from __future__ import annotations

import itertools
import time
from typing import Callable

from ..allocator import reused_memory
from ..errors import ConfigError, StoreError
from ..progress import progress_bar
from .concurrent import ConcurrentSteps, worker_count
from .loop import Batches, SAETrainer, TrainJob, TrainResult, _check_batch, _stream

OnDone = Callable[[int, TrainResult], None]


def train_many(batches: Batches, jobs: list[TrainJob], *, progress: bool = True, on_done: OnDone | None = None,
               workers: int | None = None) -> list[TrainResult]:
    """Train every job on one stream of [B, d] batches (an iterable, or a callable
    giving the stream from a step on). Jobs may differ in architecture, width, tokens,
    lr and schedule, but share the batch size and input width (they read the same
    batches). A job stops at its own step count; `on_done(i, result)` is called as
    soon as job i has finished (save it there: a later kill then loses nothing of it).
    Returns the results in the order of `jobs`. Under torch.distributed every rank
    calls it with the same jobs, each with its own `parallel` hooks (TrainJob), and
    its own batches. In one process on the CPU the SAEs of a step run at once on
    `workers` threads (default: one per intra-op thread; train/concurrent.py)."""
    if not jobs:
        raise ConfigError("train_many needs at least one SAE to train")
    sizes = {(j.cfg.batch_size, j.sae_cfg.d_in) for j in jobs}
    if len(sizes) > 1:
        raise ConfigError(f"SAEs trained in one pass share the batches: their (batch size, d_in) differ: {sorted(sizes)}")
    with reused_memory():   # each step's tensors reuse the last step's pages (allocator.py)
        return _train_many(batches, jobs, progress, on_done, workers)


def _train_many(batches: Batches, jobs: list[TrainJob], progress: bool, on_done: OnDone | None, workers: int | None) -> list[TrainResult]:
    trainers = [SAETrainer(j) for j in jobs]
    d = jobs[0].sae_cfg.d_in
    results: list[TrainResult | None] = [None] * len(jobs)

    def finish(i: int) -> None:
        results[i] = trainers[i].finish()
        if on_done is not None:
            on_done(i, results[i])

    for i, t in enumerate(trainers):
        if t.start >= t.total:   # resumed from a finished checkpoint
            finish(i)
    todo = [t for t in trainers if t.start < t.total]
    source = None  # the stream as given, closed at the end
    n_workers = worker_count(todo, workers)
    together = ConcurrentSteps(n_workers) if n_workers > 1 else None
    try:
        if todo:
            start, total = min(t.start for t in todo), max(t.total for t in todo)
            stream = source = _stream(batches, start)
            fresh = [t for t in todo if t.needs_init]
            if fresh:   # only trainers starting at step 0 are fresh, so start == 0
                first = _check_batch(next(stream), d, 0)
                for t in fresh:
                    t.init_from_data(first)
                stream = itertools.chain([first], stream)
            desc = f"train {jobs[0].sae_cfg.architecture}" if len(jobs) == 1 else f"train {len(jobs)} SAEs"
            show = progress and trainers[0].parallel.is_main   # one bar, on rank 0 under torch.distributed
            with progress_bar(total=total, initial=start, enabled=show, unit="step", desc=desc, dynamic_ncols=True) as bar:
                for step in range(start, total):
                    t0 = time.perf_counter()
                    try:
                        x = _check_batch(next(stream), d, step)
                    except StopIteration:
                        raise StoreError(f"the batch stream ended after {step} steps; {total} were planned "
                                         f"(--train-tokens {max(j.cfg.n_tokens for j in jobs)})") from None
                    active = [i for i, t in enumerate(trainers) if t.start <= step < t.total]
                    share = (time.perf_counter() - t0) / len(active)
                    if together is not None:
                        together.step([trainers[i] for i in active], step, x, share)
                    else:
                        for i in active:
                            trainers[i].step(step, x, share)
                    for i in active:
                        if step + 1 == trainers[i].total:
                            finish(i)
                    if len(jobs) == 1 and trainers[0].last_record:
                        r = trainers[0].last_record
                        bar.set_postfix(loss=f"{r['loss']:.3g}", L0=f"{r['l0']:.1f}", FVE=f"{r['fve']:.3f}", dead=f"{r['dead_fraction']:.1%}", refresh=False)
                    else:
                        bar.set_postfix_str(f"{sum(r is not None for r in results)}/{len(jobs)} done", refresh=False)
                    bar.update(1)
    finally:
        if together is not None:
            together.close()
        for given in (source, batches):  # stop a loader's prefetch thread now, not at interpreter exit
            if hasattr(given, "close"):
                given.close()
    return results  # type: ignore[return-value]
