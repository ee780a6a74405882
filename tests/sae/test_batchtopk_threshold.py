"""BatchTopK's inference threshold θ matches k: trained on a planted dictionary,
batchtopk and matryoshka encode held-out rows (no batch, one θ) with L0 near the
k they were trained at. An EMA of the batch minimum that lags the weights (rate 0.01
over a run of a few hundred steps) left θ too high: held-out L0 9-13 at k 16 and
many rare latents (docs/training.md, "BatchTopK's threshold")."""

from __future__ import annotations

import pytest
import torch

from monosemantic.evals.synthetic import SyntheticConfig, SyntheticDictionary, recovery
from monosemantic.sae import SAEConfig
from monosemantic.train import TrainConfig, TrainJob, train_many


@pytest.fixture(scope="module")
def trained():
    truth = SyntheticDictionary(SyntheticConfig(d=32, n_true=128, mean_active=6.0))
    B, steps = 256, 150
    cfg = TrainConfig(n_tokens=B * steps, batch_size=B, log_every=50, checkpoint_every=0, dtype="float32")
    jobs = [TrainJob(SAEConfig(arch, 32, 256, k=6), cfg) for arch in ("batchtopk", "matryoshka")]
    results = train_many(truth.batches(B), jobs, progress=False)
    heldout = torch.from_numpy(truth.rows(20_000, stream=-2))
    return {job.sae_cfg.architecture: recovery(r.sae, truth, heldout) for job, r in zip(jobs, results)}


@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka"])
def test_held_out_l0_at_the_learnt_threshold_is_near_k(trained, arch):
    got = trained[arch]
    assert abs(got.l0 - 6) <= 0.6, f"{arch}: held-out L0 {got.l0:.2f} at k 6 (θ does not match k)"
    assert got.dead_fraction < 0.05, got
