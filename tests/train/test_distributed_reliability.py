"""Bad launches a user can make on several nodes, refused on every rank before any
work: a rank 0 launched with a larger world size than the others (it used to wait
for ranks that never come), and a run directory the ranks do not share; and ranks
that would outlive a launcher killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distributed_helpers import env, rank_pid, ranks_by_hand, synthetic_store

TRAIN = ["--batch-size", 64, "--train-tokens", 6400, "--train-dtype", "float32", "--architecture", "relu", "--latents", 16]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return synthetic_store(tmp_path_factory.mktemp("store") / "x.npy", rows=1000)


def test_a_rank_0_launched_with_a_larger_world_is_refused_not_left_waiting(store, tmp_path):
    command = ["train", tmp_path / "run", "--activations", store, *TRAIN]
    results = ranks_by_hand([command, command], sizes=[3, 2], timeout=120)
    assert [r.returncode for r in results] == [1, 1], [r.stderr[-1500:] for r in results]
    assert results[0].stderr.strip().endswith("rank 0: rank 1 was launched with a world size of 2, rank 0 with 3: "
                                              "launch every rank with the same --nnodes/--nproc-per-node (WORLD_SIZE)")
    assert "rank 1: rank 0 was launched with a world size of 3, rank 1 with 2" in results[1].stderr
    assert not (tmp_path / "run").exists()


def test_a_run_directory_the_ranks_do_not_share_is_refused_before_any_work(store, tmp_path):
    # Two paths stand for one path on two nodes' local disks: each rank sees only its own.
    runs = [tmp_path / "node0" / "run", tmp_path / "node1" / "run"]
    results = ranks_by_hand([["train", run, "--activations", store, *TRAIN] for run in runs], timeout=120)
    assert [r.returncode for r in results] == [1, 1], [r.stderr[-1500:] for r in results]
    for r in results:
        last = r.stderr.strip().splitlines()[-1]
        assert "rank 1 disagrees with rank 0 on the contents of" in last and "on a shared filesystem" in last, last
        assert "Traceback" not in r.stderr
    for run in runs:
        assert not (run / "metrics.jsonl").exists() and not (run / "sae").exists() and not (run / "config.json").exists()
        assert not any((run / "checkpoints").iterdir())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_ranks_die_with_a_launcher_killed_by_sigkill(store, tmp_path):
    flags = [*TRAIN, "--checkpoint-every", 10]
    flags[flags.index("--train-tokens") + 1] = 64 * 5000  # far more than the test waits for
    run = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "monosemantic", "train", str(run), "--activations", str(store),
                                 *map(str, flags), "--nproc", "2"], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "latest.pt").is_file():
        assert launcher.poll() is None and time.time() < deadline, "no checkpoint was written"
        time.sleep(0.05)
    ranks = [rank_pid(launcher.pid, r) for r in (0, 1)]
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    deadline = time.time() + 30
    while any(_alive(p) for p in ranks) and time.time() < deadline:
        time.sleep(0.1)
    alive = [p for p in ranks if _alive(p)]
    for p in alive:  # do not leave them running if the test fails
        os.kill(p, signal.SIGKILL)
    assert not alive, "ranks outlived their launcher"
