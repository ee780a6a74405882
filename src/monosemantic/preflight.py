"""Checks before a long stage starts: the free disk and memory it will need, and a
duration that is not absurd. Estimates are rough (within ~2x); a stage that would
clearly not fit is refused in one line instead of failing hours later."""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import ConfigError

# Far above any CPU this project measured (65-110 GFLOP/s on 2 cores): a run refused
# at this rate would not finish on much faster hardware either.
OPTIMISTIC_FLOPS_PER_S = 1e12
# A step of any size costs at least this much (optimiser, data loading, Python):
# tiny dictionaries ran ~5 steps/s here, 2,000x slower than this floor.
MIN_STEP_SECONDS = 1e-4
MAX_DAYS = 365


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is no /proc)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_disk(path: str | Path) -> int:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:  # the run directory may not exist yet
        path = path.parent
    return shutil.disk_usage(path).free


def check_disk(path: str | Path, need_bytes: float, what: str, flag: str) -> None:
    free = free_disk(path)
    if need_bytes > free:
        raise ConfigError(f"{what} needs about {_gb(need_bytes)} of disk, {path} has {_gb(free)} free: "
                          f"lower {flag} or free some space")


def check_memory(need_bytes: float, what: str, flag: str) -> None:
    available = available_memory()
    if available is not None and need_bytes > available:
        raise ConfigError(f"{what} needs about {_gb(need_bytes)} of memory, {_gb(available)} is available: lower {flag}")


def check_duration(flops: float, what: str, flag: str, steps: int = 0) -> None:
    days = (flops / OPTIMISTIC_FLOPS_PER_S + steps * MIN_STEP_SECONDS) / 86400
    if days > MAX_DAYS:
        raise ConfigError(f"{what} would take over {days / 365:,.0f} years even at {OPTIMISTIC_FLOPS_PER_S:.0e} FLOP/s "
                          f"({flops:.2e} FLOPs in {steps:,} steps): lower {flag}")
