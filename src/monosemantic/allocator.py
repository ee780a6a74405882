"""glibc's malloc told to keep freed memory for the next allocation of its size.

A training step frees and allocates the same tensors every step ([B, d] activations,
[B, k] selections, the weights' bfloat16 copies). By default glibc returns a freed
block above its mmap threshold to the OS and trims the heap's top once a couple of
such blocks are free, so the next step's tensors start as fresh pages and pay a page
fault per 4 KiB. On this project's VMs that was most of the time of small passes: the
training log's per-step sums took 21 ms at [4096, 576] by default and 3.5 ms with the
blocks kept; a bfloat16 TopK step (d 576, 16,384 latents, batch 4,096) went from
0.41 to 0.37 s (benchmarks/train_throughput.py --compare share).

Kept: blocks up to 32 MiB (glibc's largest mmap threshold; larger ones, such as the
[B, n] pre-activations, are still mapped afresh: sparse_topk.py reuses that buffer
itself) and up to 1 GiB of free heap top. It is process-wide, so the command line and
`train_many` call it, not the import; elsewhere than glibc it does nothing."""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc's malloc.h
KEPT_BLOCK, KEPT_TOP = 32 << 20, 1 << 30

_kept = False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once; True where they are set (glibc on Linux)."""
    global _kept
    if _kept or not sys.platform.startswith("linux"):
        return _kept
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    _kept = bool(mallopt(M_MMAP_THRESHOLD, KEPT_BLOCK)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_TOP))
    return _kept
