"""Feature-sharded JumpReLU (2 gloo ranks) and the 2 x 2 data x feature mesh (4 gloo
ranks) equal one process; a mesh checkpoint resumes on one process and on another
(D, F). The JumpReLU loss pieces the sharded path sums are additive over latents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from distributed_helpers import cli, max_difference, sae_weights, synthetic_store
from monosemantic.sae import SAEConfig, make_sae
from monosemantic.train.sharded_checkpoint import MARKER

COMMON = ["--batch-size", 64, "--train-tokens", 6400, "--train-dtype", "float32", "--checkpoint-every", 40, "--log-every", 10]
# the pre-activation term on, so every JumpReLU loss piece crosses the shards
JUMPRELU = ["--architecture", "jumprelu", "--latents", 64, "--jumprelu-preact-coefficient", 0.01]
# 256 latents at k = 4 with a 320-token window: a few latents die, so AuxK runs over the mesh
TOPK = ["--architecture", "topk", "--latents", 256, "--k", 4, "--dead-window", 320]
MESH = ["--nproc", 4, "--parallel", "mesh", "--feature-ranks", 2]
TOLERANCE = 1e-5  # float summation order only: measured 6e-7..1.6e-6 after 100 steps


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return synthetic_store(tmp_path_factory.mktemp("store") / "x.npy")


def train(store, run, *flags) -> Path:
    done = cli("train", run, "--activations", store, *COMMON, *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def last_metrics(run: Path) -> dict:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


def assert_same_run(mine: Path, reference: Path, keys) -> None:
    assert max_difference(sae_weights(mine), sae_weights(reference)) < TOLERANCE
    a, b = last_metrics(mine), last_metrics(reference)
    assert a.keys() == b.keys()
    for key in keys:
        assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key


@pytest.mark.slow
def test_feature_sharded_jumprelu_equals_one_process(store, tmp_path):
    reference = train(store, tmp_path / "one", *JUMPRELU)
    sharded = train(store, tmp_path / "two", *JUMPRELU, "--nproc", 2, "--parallel", "feature")
    assert last_metrics(reference)["preact"] > 0
    assert_same_run(sharded, reference, ("loss", "fve", "l0", "mse", "preact", "dead_fraction", "flops"))


@pytest.mark.slow
def test_mesh_2x2_equals_one_process_and_resumes_on_1_and_on_2x1(store, tmp_path):
    reference = train(store, tmp_path / "one", *TOPK)
    run = train(store, tmp_path / "mesh", *TOPK, *MESH)
    assert last_metrics(run)["aux"] > 0 and last_metrics(run)["dead_fraction"] > 0
    assert_same_run(run, reference, ("loss", "fve", "l0", "mse", "aux", "dead_fraction", "flops"))
    ckpt = run / "checkpoints"
    # one file per feature shard (data group 0 writes), not one per rank
    assert sorted(p.name for p in (ckpt / "sharded-step-000000100").iterdir()) == ["rank-00000.pt", "rank-00001.pt"]
    assert json.loads((ckpt / MARKER).read_text())["ranges"] == [[0, 128], [128, 256]]

    # As if killed after step 80's checkpoint; resumed by one process, and by D = 2 x F = 1.
    marker = json.loads((ckpt / MARKER).read_text()) | {"step": 80, "dir": "sharded-step-000000080"}
    (ckpt / MARKER).write_text(json.dumps(marker))
    shutil.rmtree(run / "sae")
    again = tmp_path / "again"
    shutil.copytree(run, again)
    train(store, run, *TOPK, "--resume")
    assert_same_run(run, reference, ("loss", "fve", "l0", "aux", "dead_fraction"))
    train(store, again, *TOPK, "--resume", "--nproc", 2, "--parallel", "mesh", "--feature-ranks", 1)
    assert_same_run(again, reference, ("loss", "fve", "l0", "aux", "dead_fraction"))
    assert sorted(p.name for p in (again / "checkpoints" / "sharded-step-000000100").iterdir()) == ["rank-00000.pt"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["batchtopk", "jumprelu"])
def test_mesh_2x2_batchtopk_and_jumprelu_equal_one_process(store, tmp_path, arch):
    flags = JUMPRELU if arch == "jumprelu" else ["--architecture", "batchtopk", *TOPK[2:]]
    reference = train(store, tmp_path / "one", *flags)
    run = train(store, tmp_path / "mesh", *flags, *MESH)
    assert_same_run(run, reference, ("loss", "fve", "l0", "mse", "dead_fraction", "preact" if arch == "jumprelu" else "aux"))


def test_jumprelu_penalty_terms_are_sums_over_latents():
    """What feature sharding relies on: the slices' terms add up to the whole's, and
    the forward's loss is the MSE plus `penalty` of them."""
    torch.manual_seed(0)
    cfg = SAEConfig("jumprelu", d_in=8, n_latents=10, jumprelu_preact_coefficient=0.3)
    sae = make_sae(cfg)
    x = torch.randn(32, 8) * 2
    sae.init_from_data(x)
    pre = sae.pre_acts(x)
    whole = sae.penalty_terms(pre)
    halves = []
    for lo, hi in ((0, 4), (4, 10)):
        part = make_sae(SAEConfig("jumprelu", d_in=8, n_latents=hi - lo, jumprelu_preact_coefficient=0.3))
        state = {"W_enc": sae.W_enc[:, lo:hi], "W_dec": sae.W_dec[lo:hi], "b_enc": sae.b_enc[lo:hi],
                 "b_dec": sae.b_dec, "log_threshold": sae.log_threshold[lo:hi], "bandwidth": sae.bandwidth}
        part.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        p = part.pre_acts(x)
        halves.append(part.penalty_terms(p))
    assert set(whole) == {"l0", "preact"}
    for name in whole:
        assert float(whole[name].detach()) > 0
        assert torch.allclose(halves[0][name] + halves[1][name], whole[name], rtol=1e-6), name
    out = sae(x, sparsity_scale=0.5)
    mse = out.terms["mse"]
    assert torch.allclose(out.loss, mse + sae.penalty(whole, 0.5), rtol=1e-6)


def test_jumprelu_bandwidth_is_the_median_over_every_latent():
    torch.manual_seed(0)
    sae = make_sae(SAEConfig("jumprelu", d_in=8, n_latents=10))
    x = torch.randn(32, 8)
    std = sae.pre_acts(x).detach().std(0).clamp_min(1e-6)
    sae.init_from_data(x, all_latents=lambda v: torch.cat([v, torch.full((11,), 50.0)]))  # as if 11 more shards' latents
    assert float(sae.bandwidth) == pytest.approx(0.1 * 50.0)
    sae.init_from_data(x)
    assert float(sae.bandwidth) == pytest.approx(0.1 * float(std.median()))


def test_mesh_without_feature_ranks_is_one_line_error(store, tmp_path):
    done = cli("train", tmp_path / "run", "--activations", store, *COMMON, *TOPK, "--parallel", "mesh")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--feature-ranks F goes with --parallel mesh" in done.stderr


def test_bad_mesh_splits_are_refused_by_the_launcher_before_any_rank(store, tmp_path):
    done = cli("train", tmp_path / "run", "--activations", store, *COMMON, *TOPK, "--nproc", 4, "--parallel", "mesh", "--feature-ranks", 3)
    assert done.returncode == 1
    assert "--feature-ranks 3 does not divide the 4 ranks" in done.stderr
    assert "rank 0" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr   # the launcher's one line
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    done = cli("train", tmp_path / "run", "--activations", store, *COMMON[2:], "--batch-size", 63, *TOPK, *MESH)
    assert done.returncode == 1 and "does not split evenly over 2 data groups" in done.stderr and "rank 0" not in done.stderr, done.stderr
