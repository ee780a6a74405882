"""The memory preflight of a one-pass run counts every SAE of the pass, not each alone."""

from __future__ import annotations

import numpy as np
import pytest

from monosemantic import preflight
from monosemantic.errors import ConfigError
from monosemantic.sae import SAEConfig
from monosemantic.train import TrainConfig
from monosemantic.train.run import train_runs, training_memory


def test_a_pass_that_fits_one_sae_at_a_time_but_not_all_is_refused(tmp_path, monkeypatch):
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((512, 16)).astype(np.float32))
    cfg = TrainConfig(n_tokens=1024, batch_size=128)
    one = sum(training_memory(SAEConfig("relu", 16, 4096), 128))
    monkeypatch.setattr(preflight, "available_memory", lambda: int(1.5 * one))   # one fits, two do not
    runs = [(tmp_path / name, {"architecture": "relu", "n_latents": 4096}, cfg) for name in ("a", "b")]
    with pytest.raises(ConfigError, match="2 SAEs trained in one pass"):
        train_runs(runs, activations=x, progress=False)
    assert not (tmp_path / "a" / "sae").exists()
    train_runs(runs[:1], activations=x, progress=False)   # alone it fits
    assert (tmp_path / "a" / "sae").is_dir()
