"""`--dtype auto`: bf16 is ~2x faster than fp32 on CPUs with native bf16 dot products
(AVX512-BF16 / AMX) and 4-100x slower on AVX2-only CPUs (DESIGN.md, measured), so the
choice is made per machine and recorded with its reason."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import NamedTuple

import torch

from ..errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class DtypeChoice(NamedTuple):
    dtype: torch.dtype
    reason: str


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _probe_seconds(dtype: torch.dtype, budget_s: float = 0.25) -> float:
    a = torch.randn(256, 576, dtype=dtype)
    b = torch.randn(576, 1536, dtype=dtype)
    a @ b  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s:
        a @ b
        n += 1
    return (time.perf_counter() - start) / n


@lru_cache(maxsize=None)
def _auto_choice() -> DtypeChoice:
    flags = _cpu_flags()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return DtypeChoice(torch.bfloat16, "cpu has native bf16 (avx512_bf16/amx_bf16)")
    if flags and "avx512f" not in flags:
        return DtypeChoice(torch.float32, "cpu lacks avx512: bf16 matmul is emulated and slow")
    fp32, bf16 = _probe_seconds(torch.float32), _probe_seconds(torch.bfloat16)
    if bf16 < 0.8 * fp32:
        return DtypeChoice(torch.bfloat16, f"probe: bf16 matmul {fp32 / bf16:.1f}x faster than fp32")
    return DtypeChoice(torch.float32, f"probe: bf16 matmul not faster ({fp32 / bf16:.2f}x)")


def choose_dtype(name: str = "auto", device: str = "cpu") -> DtypeChoice:
    if name == "auto":
        if device != "cpu":
            return DtypeChoice(torch.bfloat16, f"accelerator {device}")
        return _auto_choice()
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r}: use auto, float32, bfloat16 or float16")
    return DtypeChoice(DTYPES[name], "requested")
