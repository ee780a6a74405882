"""Training on 2 gloo ranks equals one process: data parallel, feature sharded
(TopK and BatchTopK with AuxK active, ReLU), checkpoints resharded 2 -> 1; bad launches refused
before any work; a dead rank named."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from distributed_helpers import assert_refused_before_work, cli, kill_rank_once_ready, max_difference, ranks_by_hand, sae_weights, synthetic_store
from monosemantic.sae import SAEConfig
from monosemantic.train import TrainConfig, train_sae
from monosemantic.train.checkpoint import load_checkpoint
from monosemantic.train.sharded_checkpoint import MARKER, load_sharded, param_names, shard_range

COMMON = ["--batch-size", 64, "--train-tokens", 6400, "--train-dtype", "float32", "--checkpoint-every", 40, "--log-every", 10]
# 256 latents at k = 4 with a 320-token window: a few latents die, so AuxK's global selection is exercised.
TOPK = ["--architecture", "topk", "--latents", 256, "--k", 4, "--dead-window", 320]
RELU = ["--architecture", "relu", "--latents", 64]
TOLERANCE = 1e-5  # float summation order only: measured differences are 1e-7..1e-6 after 100 steps


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return synthetic_store(tmp_path_factory.mktemp("store") / "x.npy")


class _References(dict):
    """Reference runs, one process each, trained on first use."""

    def __init__(self, store, factory):
        super().__init__()
        self.store, self.factory = store, factory

    def __missing__(self, arch):
        self[arch] = _one(self.store, self.factory.mktemp(f"one-{arch}"), {"topk": TOPK, "relu": RELU}[arch])
        return self[arch]


@pytest.fixture(scope="module")
def one_process(store, tmp_path_factory):
    return _References(store, tmp_path_factory)


def train_2(store, run, flags, parallel):
    done = cli("train", run, "--activations", store, *COMMON, *flags, "--nproc", 2, "--parallel", parallel)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def last_metrics(run: Path) -> dict:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.slow
def test_feature_sharded_topk_equals_one_process_and_reshards_2_to_1(store, one_process, tmp_path):
    run = tmp_path / "sharded"
    train_2(store, run, TOPK, "feature")
    reference = sae_weights(one_process["topk"])
    assert max_difference(sae_weights(run), reference) < TOLERANCE
    mine, theirs = last_metrics(run), last_metrics(one_process["topk"])
    assert mine["aux"] > 0 and mine["dead_fraction"] > 0  # AuxK ran on the dead latents of both shards
    for key in ("loss", "fve", "l0", "dead_fraction", "aux", "flops"):
        assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key
    ckpt = run / "checkpoints"
    assert sorted(p.name for p in (ckpt / "sharded-step-000000100").iterdir()) == ["rank-00000.pt", "rank-00001.pt"]

    # As if killed after step 80's checkpoint: one process resumes from the 2-rank files.
    marker = json.loads((ckpt / MARKER).read_text())
    marker.update(step=80, dir="sharded-step-000000080")
    (ckpt / MARKER).write_text(json.dumps(marker))
    shutil.rmtree(run / "sae")
    done = cli("train", run, "--activations", store, *COMMON, *TOPK, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert max_difference(sae_weights(run), reference) < TOLERANCE
    assert (ckpt / "latest.pt").is_file() and not (ckpt / MARKER).exists()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["relu", "batchtopk"])
def test_feature_sharded_relu_and_batchtopk_equal_one_process(store, one_process, tmp_path, arch):
    flags = RELU if arch == "relu" else [*TOPK[:1], "batchtopk", *TOPK[2:]]
    reference = one_process["relu"] if arch == "relu" else _one(store, tmp_path / "one", flags)
    train_2(store, tmp_path / "sharded", flags, "feature")
    assert max_difference(sae_weights(tmp_path / "sharded"), sae_weights(reference)) < TOLERANCE
    mine, theirs = last_metrics(tmp_path / "sharded"), last_metrics(reference)
    assert mine.keys() == theirs.keys()
    for key in ("loss", "fve", "l0", "dead_fraction", "flops", "mse", "l1" if arch == "relu" else "aux"):
        assert mine[key] == pytest.approx(theirs[key], rel=1e-5), key


def _one(store, run, flags) -> Path:
    done = cli("train", run, "--activations", store, *COMMON, *flags)
    assert done.returncode == 0, done.stderr[-2000:]
    return run


@pytest.mark.slow
def test_data_parallel_equals_one_process(store, one_process, tmp_path):
    run = tmp_path / "dp"
    train_2(store, run, RELU, "data")
    assert max_difference(sae_weights(run), sae_weights(one_process["relu"])) < TOLERANCE
    for key in ("loss", "fve", "l0", "mse", "l1"):
        assert last_metrics(run)[key] == pytest.approx(last_metrics(one_process["relu"])[key], rel=1e-6), key
    assert (run / "checkpoints" / "latest.pt").is_file()  # written once, in the single-process format


def _tiny_checkpoint(tmp_path: Path, arch: str) -> tuple[Path, SAEConfig]:
    g = torch.Generator().manual_seed(0)
    data = [torch.randn(32, 8, generator=g) * 2 + 1 for _ in range(6)]
    sae_cfg = SAEConfig(arch, d_in=8, n_latents=10, k=3)
    train_sae(data, sae_cfg, TrainConfig(n_tokens=6 * 32, batch_size=32, dtype="float32", checkpoint_every=0),
              out_dir=tmp_path / "one", progress=False)
    return tmp_path / "one" / "checkpoints", sae_cfg


def _write_sharded(directory: Path, full_dir: Path, sae_cfg: SAEConfig, size: int) -> None:
    """The files `size` ranks would write for the state in full_dir (via the 1 -> N path)."""
    from monosemantic.sae.registry import ARCHITECTURES

    step = load_checkpoint(full_dir)["step"]
    sub = directory / f"sharded-step-{step:09d}"
    sub.mkdir(parents=True)
    ranges = [shard_range(sae_cfg.n_latents, r, size) for r in range(size)]
    for r, (lo, hi) in enumerate(ranges):
        local = ARCHITECTURES[sae_cfg.architecture](SAEConfig(sae_cfg.architecture, 8, hi - lo, k=min(3, hi - lo)))
        piece = load_sharded(full_dir, lo, hi, local) | {"range": [lo, hi], "param_names": param_names(local)}
        torch.save(piece, sub / f"rank-{r:05d}.pt")
    (directory / MARKER).write_text(json.dumps({"step": step, "world_size": size, "n_latents": sae_cfg.n_latents,
                                                "dir": sub.name, "ranges": [list(x) for x in ranges]}))


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_resharding_round_trips_every_tensor(tmp_path, arch):
    full_dir, sae_cfg = _tiny_checkpoint(tmp_path, arch)
    full = load_checkpoint(full_dir)
    for size in (2, 3):
        directory = tmp_path / f"sharded-{size}"
        _write_sharded(directory, full_dir, sae_cfg, size)
        again = load_checkpoint(directory)  # N -> 1: exactly the single-process checkpoint
        for name, tensor in full["sae"].items():
            assert torch.equal(again["sae"][name], tensor), name
            assert again["sae"][name].stride() == tensor.stride(), name  # layout kept (fused Adam needs it)
        for index, entry in full["optimizer"]["state"].items():
            for key, value in entry.items():
                assert torch.equal(again["optimizer"]["state"][index][key], value), (index, key)
                assert again["optimizer"]["state"][index][key].stride() == value.stride()
        assert torch.equal(again["dead"]["since_fired"], full["dead"]["since_fired"])
        middle = load_sharded(directory, 4, 7)  # N -> M: a range across old shard boundaries
        assert torch.equal(middle["sae"]["W_enc"], full["sae"]["W_enc"][:, 4:7])
        assert torch.equal(middle["sae"]["b_dec"], full["sae"]["b_dec"])


def test_ranks_that_disagree_are_refused_before_any_work(store, tmp_path):
    run = tmp_path / "run"
    base = ["train", run, "--activations", store, *COMMON, *RELU]
    other_store = synthetic_store(tmp_path / "other.npy", seed=1)
    results = ranks_by_hand([base, ["train", run, "--activations", other_store, *COMMON, *RELU]])
    assert all(r.returncode == 1 for r in results), [r.stderr[-1500:] for r in results]
    assert "rank 1 disagrees with rank 0 on the training settings and store" in results[0].stderr
    assert "Traceback" not in results[0].stderr + results[1].stderr
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())
    assert not (run / "metrics.jsonl").exists()


def test_ranks_launched_with_other_world_sizes_are_refused_before_any_work(store, tmp_path):
    command = ["train", tmp_path / "run", "--activations", store, *COMMON, *RELU]
    results = ranks_by_hand([command, command], sizes=[2, 3], timeout=120)
    assert [r.returncode for r in results] == [1, 1], [r.stderr[-1500:] for r in results]
    assert "rank 1 was launched with a world size of 3, rank 0 with 2" in results[0].stderr
    assert "rank 0 was launched with a world size of 2, rank 1 with 3" in results[1].stderr
    assert not (tmp_path / "run").exists()


def test_batch_that_does_not_split_over_the_ranks_is_refused(store, tmp_path):
    flags = [*COMMON, *RELU]
    flags[flags.index("--batch-size") + 1] = 63
    done = cli("train", tmp_path / "run", "--activations", store, *flags, "--nproc", 2)
    assert_refused_before_work(done, "--batch-size 63 does not split evenly over 2 ranks: use a multiple of 2", tmp_path / "run")


@pytest.mark.slow
def test_a_killed_rank_is_named_and_resume_finishes_the_same_training(store, one_process, tmp_path):
    run = tmp_path / "run"
    flags = ["--activations", store, *COMMON, *TOPK, "--nproc", 2, "--parallel", "feature"]
    flags[flags.index("--checkpoint-every") + 1] = 10
    returncode, stderr = kill_rank_once_ready([sys.executable, "-m", "monosemantic", "train", str(run), *map(str, flags)],
                                              run / "checkpoints" / MARKER)
    assert returncode == 1
    assert "rank 1 of 2 failed (killed by SIGKILL" in stderr and "--resume" in stderr
    assert not (run / "sae").exists()
    done = cli("train", run, *flags, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    reference = sae_weights(one_process["topk"])
    # checkpoint_every differs from the reference's, which changes nothing but the files written
    assert max_difference(sae_weights(run), reference) < TOLERANCE
