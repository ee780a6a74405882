"""train_sae given a store or its batch stream, as the README shows it: the scale is
learnt from the store, the SAE comes back in raw units, tokens are those the stream
gave, and the loader's prefetch thread is gone when training returns."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import torch
from sparse_dictionary import sparse_rows

from monosemantic.activations import open_store
from monosemantic.errors import ConfigError
from monosemantic.sae import SAEConfig
from monosemantic.train import TrainConfig, train_sae

D, N = 16, 64


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "acts.npy"
    np.save(path, sparse_rows(8192, 0, d=D, n_true=48) * 40.0)   # raw units far from E|x| = sqrt(d)
    return open_store(path)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "activation-prefetch" and t.is_alive()]


def _fve(sae, x):
    with torch.no_grad():
        x_hat = sae.decode(sae.encode(x))
    return 1 - float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


@pytest.mark.parametrize("given", ["store", "stream"])
def test_train_sae_on_a_store_learns_its_scale_and_returns_raw_units(store, given):
    cfg = TrainConfig(n_tokens=256 * 60, batch_size=256, lr=3e-3, log_every=10, checkpoint_every=0)
    batches = store if given == "store" else store.batches(batch_size=256)
    result = train_sae(batches, SAEConfig("topk", d_in=D, n_latents=N, k=4), cfg, progress=False)
    assert result.sae.cfg.norm_scale == 1.0 and result.sae.folded_norm_scale == pytest.approx(store.norm_scale)
    raw = torch.from_numpy(store.gather(store.split_indices("heldout")))   # raw units, as a model gives them
    assert _fve(result.sae, raw) > 0.5
    assert result.tokens == 256 * 60
    assert not _prefetch_threads()


def test_tokens_are_counted_from_the_batches_seen(store):
    # The stream's batches (1,024 rows) are larger than TrainConfig.batch_size (256).
    cfg = TrainConfig(n_tokens=256 * 40, batch_size=256, lr=3e-3, log_every=10, checkpoint_every=0)
    result = train_sae(store.batches(batch_size=1024), SAEConfig("relu", d_in=D, n_latents=N), cfg, progress=False)
    assert result.tokens == 40 * 1024
    assert not _prefetch_threads()


def test_a_scale_that_contradicts_the_store_is_refused(store):
    with pytest.raises(ConfigError, match="scales its batches"):
        train_sae(store, SAEConfig("relu", d_in=D, n_latents=N, norm_scale=3.0), TrainConfig(n_tokens=256 * 4, batch_size=256), progress=False)


def test_closing_a_batch_stream_joins_its_thread(store):
    stream = store.batches(batch_size=256)
    list(itertools.islice(stream, 3))
    assert _prefetch_threads()
    stream.close()
    assert not _prefetch_threads()
