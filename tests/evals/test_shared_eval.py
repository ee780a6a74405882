"""Several SAEs of one store evaluated together share the model's clean, zero- and
mean-ablated forwards: the same numbers as one at a time, 3 + N forwards per batch
instead of 4N (tiny Llama, real run directories)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict

import numpy as np

import pytest
import torch

from text_store import harvest_text_store
from monosemantic.evals.run import evaluate_run, evaluate_runs, heldout_contexts
from monosemantic.evals.spliced import spliced_stats, spliced_stats_many
from monosemantic.run import Run
from monosemantic.train import TrainConfig, train_run

SMALL = TrainConfig(n_tokens=512, batch_size=64, log_every=2, checkpoint_every=0)


@pytest.fixture(scope="module")
def two_runs(tiny_llama, tiny_model_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("shared-eval")
    harvest_text_store(root / "store", root / "in", tiny_llama, tiny_model_dirs["llama"])
    runs = []
    for name, arch in (("relu", {"architecture": "relu", "n_latents": 32}), ("topk", {"architecture": "topk", "n_latents": 48, "k": 4})):
        train_run(root / name, arch, SMALL, activations=root / "store" / "activations", progress=False)
        runs.append(Run(root / name))
    return runs


@contextlib.contextmanager
def counting_forwards(lm):
    calls = []
    real = lm.logits

    def logits(ids, *args, **kwargs):
        calls.append(ids.shape[0])
        return real(ids, *args, **kwargs)

    lm.logits = logits
    try:
        yield calls
    finally:
        del lm.logits


def test_spliced_stats_many_equals_one_at_a_time_with_fewer_forwards(two_runs, tiny_llama):
    run = two_runs[0]
    store, contexts = run.store(), heldout_contexts(run, 6)
    mean = torch.from_numpy(store.gather(store.split_indices("train")).mean(0))
    saes = [r.sae().eval() for r in two_runs]
    fns = [(lambda x, s=s: s.decode(s.encode(x))) for s in saes]
    kwargs = dict(outlier_threshold=store.manifest["outlier_threshold"], batch_size=1)
    alone = [spliced_stats(tiny_llama, 1, contexts, fn, mean, **kwargs) for fn in fns]
    with counting_forwards(tiny_llama) as calls:
        together = spliced_stats_many(tiny_llama, 1, contexts, fns, mean, **kwargs)
    np.testing.assert_equal([asdict(s) for s in together], [asdict(s) for s in alone])   # NaN-aware: the tiny model's mean ablation can tie
    assert alone[0].ce_sae != alone[1].ce_sae, "each SAE gets its own spliced loss"
    assert contexts.shape[0] >= 2
    assert len(calls) == (3 + 2) * contexts.shape[0], "clean, zero, mean once per batch (of 1 context), then one forward per SAE"


def test_evaluate_runs_writes_what_evaluate_run_writes(two_runs, tiny_llama):
    alone = [evaluate_run(r, lm=tiny_llama, n_tokens=400, n_contexts=6, progress=False) for r in two_runs]
    with counting_forwards(tiny_llama) as calls:
        together = evaluate_runs(two_runs, lm=tiny_llama, n_tokens=400, n_contexts=6, progress=False)
    assert len(calls) == 3 + 2, "one batch of held-out contexts: 3 shared forwards and one per SAE"
    for a, b, run in zip(alone, together, two_runs):
        a.pop("eval_seconds"), b.pop("eval_seconds")
        np.testing.assert_equal(b, a)
        assert "loss_recovered" in b
        assert Run(run.dir).eval_result()["loss_recovered"] == b["loss_recovered"]
