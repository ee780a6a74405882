"""Opening a run directory never executes anything: a pickle whose `__reduce__` writes
a file is planted in every file the project reads from a run, and each reader is run
on it. The marker file must never appear, and each reader refuses (or ignores) the
file in one line."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monosemantic.errors import MonosemanticError
from monosemantic.features import build_feature_db
from monosemantic.features.build import CHECKPOINT
from monosemantic.train import TrainConfig, train_run

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from feature_helpers import TinySAE, make_tokens  # noqa: E402


class Payload:
    """Unpickling this writes `marker` (what an attacker's file would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('executed')",))


def plant(path: Path, marker: Path, as_torch: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if as_torch:  # the zip container torch.save writes, with the payload inside
        torch.save({"step": 1, "payload": Payload(marker)}, path)
    else:  # a bare pickle (torch.load reads those too)
        path.write_bytes(pickle.dumps(Payload(marker)))


@pytest.mark.parametrize("as_torch", [True, False], ids=["torch-zip", "bare-pickle"])
def test_planted_training_checkpoint_does_not_execute(as_torch, tmp_path):
    acts = tmp_path / "acts.npy"
    np.save(acts, np.random.default_rng(0).normal(size=(2048, 8)).astype(np.float32))
    run, marker = tmp_path / "run", tmp_path / "EXECUTED"
    cfg = TrainConfig(n_tokens=256 * 4, batch_size=256, log_every=2, checkpoint_every=0)
    plant(run / "checkpoints" / "latest.pt", marker, as_torch)
    with pytest.raises(MonosemanticError, match="unreadable") as e:
        train_run(run, {"n_latents": 16}, cfg, activations=acts, resume=True, progress=False)
    assert "\n" not in str(e.value)
    assert not marker.exists(), "a planted checkpoint executed code"


@pytest.mark.parametrize("as_torch", [True, False], ids=["torch-zip", "bare-pickle"])
def test_planted_features_build_state_does_not_execute(as_torch, tiny_llama, tmp_path):
    run, marker = tmp_path / "run", tmp_path / "EXECUTED"
    plant(run / CHECKPOINT, marker, as_torch)
    result = build_feature_db(run, lm=tiny_llama, sae=TinySAE(tiny_llama.d_model, 8), tokens=make_tokens(6, 16, tiny_llama.bos_id),
                              layer=1, n_tokens=64, progress=False)
    assert not marker.exists(), "a planted build checkpoint executed code"
    assert result.path.is_file()  # the foreign state was ignored and the build started over


@pytest.mark.parametrize("name", ["shard-00000.npy", "rows-00000.npy"])
def test_planted_object_arrays_in_a_store_do_not_execute(name, tmp_path):
    """Store shards are .npy: an object array inside one is a pickle too."""
    from monosemantic.activations import open_store

    run, marker = tmp_path / "run", tmp_path / "EXECUTED"
    store_dir = run / "activations"
    store_dir.mkdir(parents=True)
    np.save(store_dir / name, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    try:
        store = open_store(run)
        for _ in store.batches(4):
            break
    except (MonosemanticError, ValueError):
        pass
    assert not marker.exists(), f"a planted {name} executed code"
