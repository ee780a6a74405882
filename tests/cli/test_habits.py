"""What a command-line user expects: --version, --quiet, TQDM_DISABLE, progress on
long stages, exit 0 only on success, and no crash at exit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sparse_dictionary import sparse_rows

from monosemantic import __version__
from monosemantic.cli.main import main

TRAIN = ["--latents", "32", "--train-tokens", str(256 * 12), "--batch-size", "256", "--log-every", "4"]


@pytest.fixture
def npy(tmp_path):
    path = tmp_path / "acts.npy"
    np.save(path, sparse_rows(4096, 0, d=16, n_true=24))
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"monosemantic {__version__}"


@pytest.mark.parametrize("how", ["default", "quiet", "TQDM_DISABLE"])
def test_progress_bars_follow_quiet_and_tqdm_disable(how, npy, tmp_path, capsys, monkeypatch):
    argv = ["train", str(tmp_path / how), "--activations", str(npy), *TRAIN]
    if how == "quiet":
        argv = ["--quiet", *argv]
    if how == "TQDM_DISABLE":
        monkeypatch.setenv("TQDM_DISABLE", "1")
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "trained relu SAE" in out.out
    assert ("train relu" in out.err) == (how == "default"), out.err


def test_failure_exits_non_zero_in_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "no-such-run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("monosemantic: error:") and err.count("\n") == 1


@pytest.mark.slow
def test_train_in_a_fresh_process_exits_0_without_a_crash_at_exit(npy, tmp_path):
    # The loader's prefetch thread used to outlive training: 1 run in 14 aborted at
    # interpreter exit (134, "terminate called without an active exception").
    for i in range(3):
        out = subprocess.run([sys.executable, "-m", "monosemantic", "--quiet", "train", str(tmp_path / f"r{i}"),
                              "--activations", str(npy), *TRAIN], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "terminate called" not in out.stderr


def test_eval_spliced_loss_shows_progress(tiny_llama, capsys):
    import torch

    from monosemantic.evals.spliced import spliced_stats

    contexts = torch.randint(100, 1000, (3, 12))
    contexts[:, 0] = tiny_llama.bos_id
    spliced_stats(tiny_llama, 1, contexts, lambda x: x, torch.zeros(tiny_llama.d_model), batch_size=2, progress=True)
    assert "eval spliced loss" in capsys.readouterr().err
