"""glibc's malloc told to keep freed memory for the next allocation of its size.

A training step frees and allocates the same tensors every step ([B, d] activations,
[n, d] gradients, the weights' bfloat16 copies). By default glibc returns a freed
block above its mmap threshold to the OS and trims the heap's top once a couple of
such blocks are free, so the next step's tensors start as fresh pages and pay a page
fault per 4 KiB. On this project's VMs that was most of the time of the passes that
do little arithmetic: the training log's per-step sums took 21 ms at [4096, 576] by
default and 3.5 ms with the blocks kept; a [16384, 576] gradient's float32 copy took
14 ms fresh and 1.2 ms into kept memory.

- `keep_freed_memory()` (process-wide, once: the command line and `train_many` call
  it): blocks up to 32 MiB (glibc's largest mmap threshold) come from the heap and
  up to 1 GiB of free heap top is kept.
- `reused_memory()` (around a training pass): no block is mapped afresh, however
  large (the [n, d] gradients of a 16,384-latent SAE are 38 MB), and on the way out
  the free pages go back to the OS (malloc_trim), so a pipeline's later stages do
  not carry the pass's peak. A bfloat16 TopK step (d 576, 16,384 latents, batch
  4,096) went from 0.36 to 0.33 s with it (benchmarks/train_throughput.py).

Elsewhere than glibc both do nothing."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4   # glibc's malloc.h
KEPT_BLOCK, KEPT_TOP, DEFAULT_MMAP_MAX = 32 << 20, 1 << 30, 65536

_kept = False
_lock = threading.Lock()
_passes = 0   # reused_memory() blocks open (train_many can run inside another's on_done)


@functools.cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim   # noqa: B018 (glibc has both; musl lacks malloc_trim)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once; True where they are set (glibc on Linux)."""
    global _kept
    libc = None if _kept else _libc()
    if libc is not None:
        _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, KEPT_BLOCK)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEPT_TOP))
    return _kept


@contextlib.contextmanager
def reused_memory():
    """No fresh mappings inside the block; free memory returned to the OS after it."""
    global _passes
    libc = _libc() if keep_freed_memory() else None
    if libc is None:
        yield
        return
    with _lock:
        _passes += 1
        libc.mallopt(M_MMAP_MAX, 0)
    try:
        yield
    finally:
        with _lock:
            _passes -= 1
            if _passes == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.malloc_trim(0)
