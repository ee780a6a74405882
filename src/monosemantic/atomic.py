"""Write-to-temporary-then-rename, so a killed process never leaves a half-written
file that later looks valid (DESIGN.md: the run-directory contract)."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import MonosemanticError


class DiskFullError(MonosemanticError):
    pass


# Below this much free space a failed write is taken for a full disk: numpy and torch
# report one as a bare OSError or a RuntimeError ("file write failed"), without ENOSPC.
NEARLY_FULL_BYTES = 4 << 20


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Temporaries of `path` left by writers killed with -9 (their PID is gone)."""
    for stale in glob.glob(glob.escape(str(path.parent / _tmp_prefix(path))) + "*"):
        pid = stale.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(stale)


def _disk_full(e: BaseException, directory: Path) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(e, (OSError, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(directory).free < NEARLY_FULL_BYTES
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync and rename it over
    `path`, on any failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f"{_tmp_prefix(path)}{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        full = _disk_full(e, path.parent)  # judged before the temporary's space is given back
        tmp.unlink(missing_ok=True)
        if full:
            raise DiskFullError(f"disk full while writing {path}: free some space and run again (nothing partial was kept)") from e
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Atomic write for libraries that insist on writing to a path themselves
    (safetensors, torch.save)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())

