"""A full disk and a read-only run directory, on real file systems: a 2 MB tmpfs and
a read-only bind mount (needs root and mount; skipped elsewhere)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from monosemantic import atomic
from monosemantic.cli.main import main


def _mount(*args: str) -> bool:
    return shutil.which("mount") is not None and subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "small"
    where.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("writer", ["numpy", "torch"])
def test_disk_full_is_one_line_and_leaves_nothing(writer, small_disk):
    target = small_disk / ("big.npy" if writer == "numpy" else "big.pt")
    big = np.zeros((1024, 1024), np.float32)  # 4 MB on a 2 MB disk
    with pytest.raises(atomic.DiskFullError, match="disk full"):
        if writer == "numpy":
            atomic.save_npy(target, big)
        else:
            atomic.write_with(target, lambda p: torch.save({"w": torch.from_numpy(big)}, p))
    assert list(small_disk.iterdir()) == []  # no partial file, no temporary


def test_train_into_a_full_disk_is_one_line(small_disk, tmp_path, capsys):
    npy = tmp_path / "acts.npy"
    np.save(npy, np.random.default_rng(0).normal(size=(4096, 64)).astype(np.float32))
    code = main(["train", str(small_disk / "run"), "--activations", str(npy), "--latents", "4096", "--train-tokens", "1024",
                 "--batch-size", "256"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("monosemantic: error:") and "disk" in err[-1], err[-3:]


def test_up_to_date_features_in_a_read_only_run(web_run, tiny_llama, tmp_path, capsys):
    """An up-to-date feature database in a read-only run is checked and reused (it used
    to fail writing config.json first); a stage that must write says so in one line."""
    from monosemantic.features import build_feature_db
    from monosemantic.sae import load_sae

    from web.conftest import LAYER
    from feature_helpers import multilingual_tokens

    run = tmp_path / "run"
    shutil.copytree(web_run, run)
    if not _mount("--bind", str(run), str(run)):
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(run)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only")
        with pytest.raises(OSError):
            (run / "probe").write_text("x")
        result = build_feature_db(run, lm=tiny_llama, sae=load_sae(run / "sae"), tokens=multilingual_tokens(tiny_llama.tokenizer, 24, 32, tiny_llama.bos_id),
                                  layer=LAYER, n_tokens=600, neurons=True, progress=False)  # the arguments build_web_run used
        assert result.reused
        code = main(["report", str(run)])  # writes report/: refused in one line
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and err[-1].startswith("monosemantic: error:") and "read-only" in err[-1], err[-3:]
    finally:
        subprocess.run(["umount", "-l", str(run)], check=False)
