"""Shuffled, prefetched batch stream over an activation store.

Harvest and SAE training are compute-bound, so batches are gathered and scaled on a
background thread (numpy releases the GIL while copying) to keep the trainer fed."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from .store import ActivationStore


class BatchStream:
    """The endless batch iterator `ActivationStore.batches` returns. It carries the
    store's scale and its batch size, so `train_sae(store.batches(...), ...)` learns
    the normalisation and returns an SAE in raw units; `close()` stops the prefetch
    thread."""

    def __init__(self, loader: "BatchLoader"):
        self.norm_scale, self.batch_size = loader.store.norm_scale, loader.batch_size
        self._it = iter(loader)

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> torch.Tensor:
        return next(self._it)

    def close(self) -> None:
        self._it.close()


class BatchLoader:
    def __init__(self, store: "ActivationStore", index: np.ndarray, batch_size: int, seed: int, start_batch: int, prefetch: int):
        self.store, self.index, self.batch_size = store, index, batch_size
        self.seed, self.start_batch, self.prefetch = seed, start_batch, max(1, prefetch)
        self.per_epoch = len(index) // batch_size  # the remainder of each epoch is dropped
        self._epoch: tuple[int, np.ndarray] | None = None  # (epoch, its permutation)

    def batch_indices(self, k: int) -> np.ndarray:
        epoch, within = divmod(k, self.per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.index))
        return self._epoch[1][within * self.batch_size : (within + 1) * self.batch_size]

    def make_batch(self, k: int) -> torch.Tensor:
        return torch.from_numpy(self.store.gather(self.batch_indices(k))).mul_(self.store.norm_scale)

    def __iter__(self) -> Iterator[torch.Tensor]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce() -> None:
            k = self.start_batch
            try:
                while not stop.is_set():
                    item = self.make_batch(k)
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    k += 1
            except BaseException as e:  # surfaced in the consumer
                q.put(e)

        thread = threading.Thread(target=produce, daemon=True, name="activation-prefetch")
        thread.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Stop and join the producer before the stream is gone: a daemon thread
            # still inside torch when the interpreter exits aborted the process
            # ("terminate called without an active exception", exit 134) after
            # `monosemantic train` had saved its SAE.
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()                      # unblock a put() waiting for room
                except queue.Empty:
                    pass
                thread.join(timeout=0.05)
