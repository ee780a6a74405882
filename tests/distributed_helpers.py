"""Running the real CLI as several gloo ranks: through `--nproc` (torchrun's
launcher) or as hand-started ranks with torchrun's environment (one command per
rank, as on several nodes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

SRC = str(Path(__file__).resolve().parents[1] / "src")


def env(**extra) -> dict:
    out = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        out.pop(key, None)
    out.update({k: str(v) for k, v in extra.items()})
    return out


def cli(*args, timeout: float = 600, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monosemantic", *map(str, args)], env=env(), capture_output=True,
                          text=True, timeout=timeout, **popen)


def assert_refused_before_work(done: subprocess.CompletedProcess, message: str, run: Path) -> None:
    """The launcher refused in exactly one line, before any rank started or wrote."""
    assert done.returncode == 1
    assert done.stderr.strip() == f"monosemantic: error: {message}"
    assert not run.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ranks_by_hand(commands: list[list[str]], timeout: float = 300, sizes: list[int] | None = None) -> list[subprocess.CompletedProcess]:
    """Start command r as rank r of len(commands) (or of sizes[r]), with the variables torchrun sets."""
    port, sizes = free_port(), sizes or [len(commands)] * len(commands)
    procs = [subprocess.Popen([sys.executable, "-m", "monosemantic", *map(str, cmd)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env(RANK=r, LOCAL_RANK=r, WORLD_SIZE=sizes[r], MASTER_ADDR="127.0.0.1", MASTER_PORT=port))
             for r, cmd in enumerate(commands)]
    out = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    finally:  # a hung rank must not outlive the test
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


def synthetic_store(path: Path, rows: int = 4000, d: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.save(path, (rng.standard_normal((rows, d)) * 3 + 1).astype(np.float32))
    return path


def sae_weights(run: Path) -> dict:
    return load_file(run / "sae" / "sae_weights.safetensors")


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def kill_rank_once_ready(command: list[str], ready: Path, rank: int = 1, timeout: float = 300) -> tuple[int, str]:
    """Start `command` (a --nproc launch), SIGKILL rank `rank` as soon as `ready`
    exists, and return the launcher's (exit code, stderr)."""
    launcher = subprocess.Popen(command, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not ready.is_file():
        assert launcher.poll() is None and time.time() < deadline, f"{ready.name} was not written"
        time.sleep(0.02)
    os.kill(rank_pid(launcher.pid, rank), signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=120)
    return launcher.returncode, stderr


def rank_pid(launcher: int, rank: int) -> int:
    """The process id of rank `rank` among the descendants of `launcher` (a --nproc launcher)."""
    return next(p for p in _children(launcher) if _rank_of(p) == rank)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out + [g for c in out for g in _children(c)]


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    values = dict(item.split(b"=", 1) for item in environ if b"=" in item)
    return int(values[b"RANK"]) if b"RANK" in values else None
