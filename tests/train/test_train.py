"""The training loop and the train stage on small synthetic activations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sparse_dictionary import sparse_rows

from monosemantic.errors import CheckpointError, ConfigError, StoreError, TrainingDiverged
from monosemantic.sae import SAEConfig, load_sae
from monosemantic.train import TrainConfig, train_run, train_sae
from monosemantic.train.schedules import lr_factor, sparsity_factor

D, N = 16, 64


def sparse_data(n_rows: int, seed: int = 0) -> np.ndarray:
    return sparse_rows(n_rows, seed, d=D, n_true=48)


@pytest.fixture
def npy(tmp_path) -> Path:
    path = tmp_path / "acts.npy"
    np.save(path, sparse_data(8192))
    return path


def small_cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"n_tokens": 256 * 60, "batch_size": 256, "lr": 3e-3, "log_every": 10, "checkpoint_every": 0, **kw})


def test_schedules():
    assert lr_factor(0, 100, 0.1, 0.2) == pytest.approx(0.1)
    assert lr_factor(50, 100, 0.1, 0.2) == 1.0
    assert lr_factor(90, 100, 0.1, 0.2) == pytest.approx(0.5)
    assert lr_factor(99, 100, 0.1, 0.2) == pytest.approx(0.05)
    assert sparsity_factor(0, 100, 0.05) == pytest.approx(0.2)
    assert sparsity_factor(10, 100, 0.05) == 1.0


@pytest.mark.parametrize("architecture", ["relu", "topk", "batchtopk", "jumprelu"])
def test_train_sae_learns_from_any_iterable(architecture, tmp_path):
    data = torch.from_numpy(sparse_data(4096))
    data = data * (D ** 0.5 / data.norm(dim=1).mean())
    batches = [data[i : i + 256] for i in range(0, 4096, 256)] * 5
    result = train_sae(batches, SAEConfig(architecture=architecture, d_in=D, n_latents=N, k=4, l1_coefficient=1.0),
                       small_cfg(n_tokens=256 * len(batches)), out_dir=tmp_path, progress=False)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == len(batches)
    assert {"loss", "l0", "fve", "dead_fraction", "dead_window_tokens", "lr"} <= set(lines[-1])
    assert lines[-1]["fve"] > 0.5, lines[-1]
    assert lines[-1]["mse"] < lines[0]["mse"]


def test_bad_hyper_parameters_are_refused():
    for bad in (dict(lr=-1.0), dict(lr=float("nan")), dict(batch_size=0), dict(n_tokens=10, batch_size=100), dict(dtype="float8")):
        with pytest.raises(ConfigError):
            small_cfg(**bad).validate()


def test_nan_in_batches_names_the_step(tmp_path):
    data = torch.randn(8, 256, D)
    data[3, 5, 2] = float("nan")
    with pytest.raises(StoreError, match="step 3"):
        train_sae(list(data), SAEConfig(architecture="relu", d_in=D, n_latents=N), small_cfg(n_tokens=256 * 8), progress=False)


def test_infinities_are_refused_and_a_sum_that_overflows_is_not():
    # the batch check reads one sum: +inf and -inf together sum to NaN, and finite
    # values whose float32 sum overflows must still pass (checked then in full)
    from monosemantic.train.loop import _check_batch

    x = torch.randn(64, D)
    x[1, 2], x[5, 7] = float("inf"), float("-inf")
    with pytest.raises(StoreError, match="step 4 contains NaN or infinite"):
        _check_batch(x, D, 4)
    huge = torch.full((64, D), 3e37)
    assert not torch.isfinite(huge.sum())
    assert _check_batch(huge, D, 0) is not None


def test_divergence_stops_with_the_last_good_checkpoint(tmp_path):
    data = [torch.randn(256, D) for _ in range(6)] + [torch.full((256, D), 1e25)] * 2
    with pytest.raises(TrainingDiverged, match=r"step 6.*checkpoints/latest.pt"):
        train_sae(data, SAEConfig(architecture="relu", d_in=D, n_latents=N), small_cfg(n_tokens=256 * 8, checkpoint_every=3),
                  out_dir=tmp_path, progress=False)


def test_train_run_saves_raw_units_and_refuses_partial_results(npy, tmp_path):
    run = tmp_path / "run"
    result = train_run(run, {"architecture": "topk", "n_latents": N, "k": 4}, small_cfg(), activations=npy, progress=False)
    sae = load_sae(run / "sae")
    x = torch.from_numpy(np.load(npy)[:512])
    fve = 1 - (x - sae.decode(sae.encode(x))).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert fve > 0.5 and abs(fve - result.last_metrics["fve"]) < 0.2
    assert train_run(run, {"architecture": "topk", "n_latents": N, "k": 4}, small_cfg(), activations=npy, progress=False) is None
    with pytest.raises(ConfigError, match="other settings"):
        train_run(run, {"architecture": "topk", "n_latents": N, "k": 8}, small_cfg(), activations=npy, progress=False)


def test_wrong_width_and_nan_stores(tmp_path):
    bad = tmp_path / "nan.npy"
    array = sparse_data(1024)
    array[10, 3] = np.nan
    np.save(bad, array)
    with pytest.raises(StoreError, match="NaN"):
        train_run(tmp_path / "r1", {"n_latents": N}, small_cfg(), activations=bad, progress=False)
    assert not (tmp_path / "r1" / "sae").exists()


def test_corrupt_checkpoint_is_a_clear_error(npy, tmp_path):
    run = tmp_path / "run"
    cfg = small_cfg(checkpoint_every=20)
    train_run(run, {"n_latents": N}, cfg, activations=npy, progress=False)
    (run / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    import shutil

    shutil.rmtree(run / "sae")
    with pytest.raises(CheckpointError, match="unreadable"):
        train_run(run, {"n_latents": N}, cfg, activations=npy, resume=True, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train_run(run, {"n_latents": N}, cfg, activations=npy, progress=False)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "monosemantic", *args]


def test_resume_after_kill_matches_uninterrupted_run(npy, tmp_path):
    flags = ["--activations", str(npy), "--latents", str(N), "--train-tokens", str(256 * 400), "--batch-size", "256",
             "--checkpoint-every", "25", "--lr", "3e-3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cli("train", str(tmp_path / "whole"), *flags), check=True, env=env, capture_output=True)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli("train", str(run), *flags), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (run / "checkpoints" / "previous.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "sae").exists(), "killed before the end, the run must not look trained"
    again = subprocess.run(_cli("train", str(run), *flags), env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "--resume" in again.stderr and "Traceback" not in again.stderr
    subprocess.run(_cli("train", str(run), *flags, "--resume"), check=True, env=env, capture_output=True)

    a, b = load_sae(tmp_path / "whole" / "sae"), load_sae(run / "sae")
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-3, atol=1e-4)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)), "metrics.jsonl has duplicated or out-of-order steps after resume"


@pytest.mark.parametrize("architecture", ["relu", "topk", "batchtopk", "jumprelu"])
def test_cli_trains_each_architecture_on_the_same_store(architecture, npy, tmp_path):
    out = subprocess.run(_cli("train", str(tmp_path / architecture), "--activations", str(npy), "--architecture", architecture,
                              "--latents", str(N), "--k", "4", "--train-tokens", str(256 * 30), "--batch-size", "256"),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cfg = json.loads((tmp_path / architecture / "sae" / "cfg.json").read_text())
    assert cfg["d_sae"] == N and cfg["d_in"] == D


def test_cli_bad_inputs_are_one_line(npy, tmp_path):
    for flags in (["--lr", "-1"], ["--latents", "0"], ["--activations", str(tmp_path / "missing.npy")]):
        out = subprocess.run(_cli("train", str(tmp_path / "bad"), "--activations", str(npy), *flags), capture_output=True, text=True)
        assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
        assert not (tmp_path / "bad" / "sae").exists()
    out = subprocess.run(_cli("train", str(tmp_path / "bad"), "--architecture", "gated"), capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_jumprelu_l0_coefficient_controls_sparsity(tmp_path):
    # the paper's θ = 0.001 in log space never moved in a short run (L0 stayed near
    # n/5 whatever the penalty); thresholds must now reach the data's sparsity
    data = torch.from_numpy(sparse_data(4096))
    data = data * (D ** 0.5 / data.norm(dim=1).mean())
    batches = [data[i : i + 256] for i in range(0, 4096, 256)] * 5
    final = {}
    for coefficient in (0.01, 1.0):
        out = tmp_path / str(coefficient)      # not created beforehand: train_sae makes it
        train_sae(batches, SAEConfig(architecture="jumprelu", d_in=D, n_latents=N, l0_coefficient=coefficient),
                  small_cfg(n_tokens=256 * len(batches)), out_dir=out, progress=False)
        final[coefficient] = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert final[1.0]["l0"] < 6, final          # 3 true atoms per row
    assert final[1.0]["l0"] < 0.7 * final[0.01]["l0"], final
    assert final[1.0]["fve"] > 0.5 and final[0.01]["fve"] > final[1.0]["fve"], final


def test_auto_dtype_keeps_jumprelu_in_float32_and_explicit_choices_as_given():
    from monosemantic.train.loop import resolve_dtype

    assert resolve_dtype("float32", "relu") == "float32" and resolve_dtype("bfloat16", "jumprelu") == "bfloat16"
    assert resolve_dtype("auto", "jumprelu") == "float32"                    # not measured in bf16
    assert resolve_dtype("auto", "relu") == resolve_dtype("auto", "topk") in ("float32", "bfloat16")
