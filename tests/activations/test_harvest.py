import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from monosemantic.activations import HarvestConfig, Tokens, harvest, open_store
from monosemantic.activations.valid import SKIP_POSITIONS
from monosemantic.errors import StoreError

N_CTX, CTX_LEN = 24, 64
CFG = dict(layer=15, batch_contexts=2, shard_contexts=2)


def random_tokens(bos_id: int, n=N_CTX, t=CTX_LEN, seed=0) -> Tokens:
    rng = np.random.default_rng(seed)
    contexts = rng.integers(100, 40000, size=(n, t)).astype(np.int32)
    contexts[:, 0] = bos_id
    doc_ids = np.repeat(np.arange(n, dtype=np.int32)[:, None], t, axis=1)
    doc_pos = np.tile(np.arange(t, dtype=np.int32), (n, 1))
    return Tokens(contexts, doc_ids, doc_pos)


HARVEST_SCRIPT = """
import sys, numpy as np
from monosemantic.models import load_model
from monosemantic.activations import harvest, HarvestConfig, Tokens
lm = load_model("embedded", dtype="float32")
d = np.load(sys.argv[2])
harvest(lm, Tokens(d["c"], d["i"], d["p"]), sys.argv[1], HarvestConfig(**{cfg!r}), progress=False)
""".format(cfg=CFG)


def test_harvest_resumes_after_kill_9_without_duplicates(tmp_path, embedded_lm):
    tokens = random_tokens(embedded_lm.bos_id)
    np.savez(tmp_path / "tokens.npz", c=tokens.contexts, i=tokens.doc_ids, p=tokens.doc_pos)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", HARVEST_SCRIPT, str(killed), str(tmp_path / "tokens.npz")])
    deadline = time.time() + 120
    while len(list(killed.glob("shard-*.json"))) < 3:
        assert proc.poll() is None and time.time() < deadline, "harvest ended before it could be killed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "manifest.json").exists()
    with pytest.raises(StoreError, match="did not finish"):
        open_store(killed)

    resumed = harvest(embedded_lm, tokens, killed, HarvestConfig(**CFG), progress=False)
    clean = harvest(embedded_lm, tokens, tmp_path / "clean", HarvestConfig(**CFG), progress=False)
    assert resumed["count"] == clean["count"]
    assert resumed["shard_counts"] == clean["shard_counts"]
    a, b = open_store(killed), open_store(tmp_path / "clean")
    all_rows = np.concatenate([np.asarray(r) for r in a.rows])
    assert len(np.unique(all_rows[:, :2], axis=0)) == len(all_rows)  # no duplicated (context, position)
    np.testing.assert_allclose(a.gather(np.arange(a.count)), b.gather(np.arange(b.count)), rtol=1e-2, atol=1e-2)
    assert not list(killed.glob(".*.tmp-*"))


def test_cleaning_drops_position_zero_and_scales_to_sqrt_d(tmp_path, embedded_lm):
    tokens = random_tokens(embedded_lm.bos_id, n=8)
    manifest = harvest(embedded_lm, tokens, tmp_path, HarvestConfig(layer=15, shard_contexts=4), progress=False)
    store = open_store(tmp_path)
    rows = np.concatenate([np.asarray(r) for r in store.rows])
    assert (rows[:, 1] >= SKIP_POSITIONS).all()  # positions 0 and 1 (activations/valid.py)
    kept = 8 * (64 - SKIP_POSITIONS)
    assert manifest["count"] + round(manifest["excluded_fraction"] * kept) == kept
    x = store.sample(10_000, split="all")
    assert abs(float(x.norm(dim=1).mean()) - 24.0) < 0.05  # √576
    raw_norms = np.linalg.norm(store.gather(np.arange(store.count)), axis=1)
    assert raw_norms.max() <= manifest["outlier_threshold"] * 1.01


def test_harvest_refuses_a_directory_of_another_layer(tmp_path, embedded_lm):
    tokens = random_tokens(embedded_lm.bos_id, n=4)
    harvest(embedded_lm, tokens, tmp_path, HarvestConfig(layer=15, shard_contexts=4), progress=False)
    with pytest.raises(StoreError, match="other settings"):
        harvest(embedded_lm, tokens, tmp_path, HarvestConfig(layer=3, shard_contexts=4), progress=False)


def test_store_refuses_another_model_or_layer(tmp_path, embedded_lm):
    tokens = random_tokens(embedded_lm.bos_id, n=4)
    harvest(embedded_lm, tokens, tmp_path, HarvestConfig(layer=15, shard_contexts=4), progress=False)
    store = open_store(tmp_path)
    store.check_matches(model=embedded_lm.name, layer=15, d=576)
    with pytest.raises(StoreError, match="layer 15"):
        store.check_matches(layer=7)
    with pytest.raises(StoreError, match="harvested from"):
        store.check_matches(model="gpt2")
    with pytest.raises(StoreError, match="width"):
        store.check_matches(d=768)


def test_damaged_store_is_reported(tmp_path, embedded_lm):
    tokens = random_tokens(embedded_lm.bos_id, n=4)
    harvest(embedded_lm, tokens, tmp_path, HarvestConfig(layer=15, shard_contexts=2), progress=False)
    (tmp_path / "shard-00001.npy").write_bytes(b"garbage")
    with pytest.raises(StoreError, match="damaged"):
        open_store(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["count"] > 0


def test_store_casts_through_torch_give_numpys_bits():
    # harvest.py casts with torch (20x faster than numpy's float16 conversion here);
    # the stored bits and the norm sums must stay those numpy's astype gives,
    # overflow, subnormals and infinities included
    import numpy as np
    import torch

    from monosemantic.activations.harvest import _float32

    g = np.random.default_rng(0)
    x = np.concatenate([g.standard_normal((500, 64)).astype(np.float32) * s for s in (1.0, 300.0, 1e-5)])
    x[0, :8] = [65504, 65520, 1e6, -1e6, 6e-8, 3e-8, np.inf, -np.inf]
    with np.errstate(over="ignore"):
        half = x.astype(np.float16)
    assert np.array_equal(torch.from_numpy(x).to(torch.float16).numpy().view(np.uint16), half.view(np.uint16))
    assert np.array_equal(_float32(half).view(np.uint32), half.astype(np.float32).view(np.uint32))
    assert np.array_equal(_float32(x[:, ::2]), x[:, ::2])   # a strided float32 view passes through
