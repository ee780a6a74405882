import errno

import numpy as np
import pytest
import torch

from monosemantic import atomic
from monosemantic.activations import open_store
from monosemantic.activations.split import is_heldout
from monosemantic.activations.store import ActivationStore
from monosemantic.errors import StoreError


def synthetic_store(n_shards=4, rows_per_shard=500, d=8) -> ActivationStore:
    """Shard s holds rows whose first coordinate is s, so a batch shows its shards."""
    shards, rows = [], []
    for s in range(n_shards):
        x = np.random.default_rng(s).normal(size=(rows_per_shard, d)).astype(np.float16)
        x[:, 0] = s
        shards.append(x)
        ctx = np.arange(rows_per_shard) // 10 + s * 1000
        rows.append(np.stack([ctx, np.arange(rows_per_shard) % 10 + 1, ctx, np.zeros_like(ctx)], 1).astype(np.int32))
    return ActivationStore(shards, rows, norm_scale=1.0, manifest={"model": "m", "layer": 1})


def test_batches_mix_shards_and_cover_each_epoch_once():
    store = synthetic_store()
    train = store.split_indices("train")
    per_epoch = len(train) // 100
    it = store.batches(batch_size=100, seed=3)
    first = next(it)
    assert len(torch.unique(first[:, 0])) == 4  # one batch draws from every shard
    seen = [first] + [next(it) for _ in range(per_epoch - 1)]
    rows = torch.cat(seen)
    assert len(torch.unique(rows, dim=0)) == per_epoch * 100  # no row twice in an epoch


def test_batch_k_is_the_same_from_any_start():
    store = synthetic_store()
    it = store.batches(batch_size=64, seed=1)
    stream = [next(it) for _ in range(30)]  # crosses an epoch boundary
    resumed = store.batches(batch_size=64, seed=1, start_batch=17)
    for k in range(17, 30):
        torch.testing.assert_close(next(resumed), stream[k])
    other_seed = next(store.batches(batch_size=64, seed=2))
    assert not torch.equal(other_seed, stream[0])


def test_heldout_split_is_by_context_and_disjoint():
    store = synthetic_store()
    train, held = store.split_indices("train"), store.split_indices("heldout")
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == store.count
    assert 0.01 < len(held) / store.count < 0.15
    ctx_ids = np.concatenate(store.rows)[:, 0]
    assert not set(ctx_ids[train]) & set(ctx_ids[held])
    np.testing.assert_array_equal(is_heldout(np.arange(1000)), is_heldout(np.arange(1000)))


def test_plain_npy_is_accepted_and_scaled(tmp_path):
    x = np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32) * 7
    np.save(tmp_path / "acts.npy", x)
    store = open_store(tmp_path / "acts.npy")
    assert (store.count, store.d) == (2000, 16)
    assert abs(float(next(store.batches(512)).norm(dim=1).mean()) - 4.0) < 0.2  # √16


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((10, 4), np.nan, dtype=np.float32), "NaN"),
        (np.zeros((10,), dtype=np.float32), "shape"),
        (np.zeros((10, 4), dtype=np.int64), "dtype"),
    ],
)
def test_bad_npy_is_a_clear_error(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(StoreError, match=message):
        open_store(tmp_path / "bad.npy")


def test_missing_store_and_garbage_npy(tmp_path):
    with pytest.raises(StoreError, match="not a complete activation store"):
        open_store(tmp_path / "nothing")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(StoreError, match="readable"):
        open_store(tmp_path / "junk.npy")


def test_full_disk_leaves_no_file(tmp_path, monkeypatch):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(atomic.DiskFullError, match="disk full"):
        atomic.save_npy(tmp_path / "x.npy", np.zeros(3))
    assert list(tmp_path.iterdir()) == []
