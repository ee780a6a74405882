"""Where ranks compute: gloo on the CPU, NCCL on cuda:LOCAL_RANK. The CPU rules run
everywhere; the NCCL runs need two CUDA GPUs and are skipped without them."""

from __future__ import annotations

import pytest
import torch

from distributed_helpers import cli, max_difference, sae_weights, synthetic_store
from monosemantic.distributed import World, resolve_backend
from monosemantic.errors import DistributedError

TWO_GPUS = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs two CUDA GPUs")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
TRAIN = ["--batch-size", 64, "--train-tokens", 6400, "--train-dtype", "float32", "--checkpoint-every", 40,
         "--log-every", 10, "--architecture", "relu", "--latents", 64]


def test_each_backend_names_its_device():
    assert World(1, 2).device == torch.device("cpu")
    assert World(1, 2, local_rank=1, backend="gloo").device == torch.device("cpu")
    assert World(3, 4, local_rank=1, backend="nccl").device == torch.device("cuda", 1)


def test_backend_is_chosen_by_cuda_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv("MONOSEMANTIC_DIST_BACKEND", raising=False)
    assert resolve_backend() == ("nccl" if torch.cuda.is_available() else "gloo")
    assert resolve_backend("gloo") == "gloo"
    monkeypatch.setenv("MONOSEMANTIC_DIST_BACKEND", "gloo")
    assert resolve_backend() == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_backend("auto") == "gloo"
    with pytest.raises(DistributedError, match="--backend nccl needs CUDA GPUs"):
        resolve_backend("nccl")
    with pytest.raises(DistributedError, match="must be one of auto, gloo, nccl"):
        resolve_backend("mpi")


def test_feature_sharding_is_refused_on_nccl_until_it_computes_on_gpus(monkeypatch):
    from argparse import Namespace

    from monosemantic.cli.launch import check_splits

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine: only the choice is checked
    args = Namespace(parallel="feature", batch_size=64, nproc=2, backend=None)
    with pytest.raises(DistributedError, match="--parallel feature runs on CPU tensors .gloo. for now, not NCCL"):
        check_splits(args)
    check_splits(Namespace(parallel="feature", batch_size=64, nproc=2, backend="gloo"))
    check_splits(Namespace(parallel="data", batch_size=64, nproc=2, backend=None))


@NO_GPU
def test_nccl_without_a_gpu_is_refused_in_one_line_before_any_rank_starts(tmp_path):
    store = synthetic_store(tmp_path / "x.npy", rows=500)
    done = cli("train", tmp_path / "run", "--activations", store, *TRAIN, "--nproc", 2, "--backend", "nccl", timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == ("monosemantic: error: --backend nccl needs CUDA GPUs and torch sees "
                                                   "none here: use --backend gloo (CPU)")
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


@TWO_GPUS
@pytest.mark.slow
def test_data_parallel_on_nccl_equals_one_process(tmp_path):
    store = synthetic_store(tmp_path / "x.npy")
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli("train", one, "--activations", store, *TRAIN).returncode == 0
    done = cli("train", two, "--activations", store, *TRAIN, "--nproc", 2, "--backend", "nccl")
    assert done.returncode == 0, done.stderr[-3000:]
    # GPU kernels sum in another order than the CPU's: float tolerance, not bits
    assert max_difference(sae_weights(two), sae_weights(one)) < 1e-4
    assert (two / "checkpoints" / "latest.pt").is_file()


@TWO_GPUS
@pytest.mark.slow
def test_harvest_on_nccl_writes_the_cpu_store_up_to_float_tolerance(tmp_path, tiny_model_dirs):
    import numpy as np

    from monosemantic.activations import open_store

    text = tmp_path / "text.txt"
    text.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog {i * 7}." for i in range(400)))
    flags = ["--model", tiny_model_dirs["llama"], "--inputs", text, "--tokens", 9000, "--ctx-len", 16, "--dtype", "float32"]
    assert cli("harvest", tmp_path / "cpu", *flags).returncode == 0
    done = cli("harvest", tmp_path / "gpu", *flags, "--nproc", 2, "--backend", "nccl")
    assert done.returncode == 0, done.stderr[-3000:]
    cpu, gpu = open_store(tmp_path / "cpu"), open_store(tmp_path / "gpu")
    assert cpu.count == gpu.count
    rows = np.arange(cpu.count)
    assert np.allclose(cpu.gather(rows), gpu.gather(rows), atol=1e-2, rtol=1e-2)
