"""Bad launches a user can make on several nodes, refused on every rank before any
work: a rank 0 launched with a larger world size than the others (it used to wait
for ranks that never come), and a run directory the ranks do not share."""

from __future__ import annotations

from pathlib import Path

import pytest

from distributed_helpers import ranks_by_hand, synthetic_store

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
