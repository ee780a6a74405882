"""`Run` resolves a run directory once: its store and tokens (its own, another run's
through `train --activations`, or a plain .npy), model spec, layer, SAE, metrics; and
every stage that takes a run directory goes through it (tiny Llama, real files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from text_store import harvest_text_store
from monosemantic.cli.main import main
from monosemantic.errors import ConfigError
from monosemantic.evals.run import evaluate_run
from monosemantic.features import build_feature_db
from monosemantic.run import Run, read_metrics
from monosemantic.steering import open_run
from monosemantic.train import TrainConfig, train_run

LAYER = 1
SMALL = TrainConfig(n_tokens=512, batch_size=64, log_every=2, checkpoint_every=0)


@pytest.fixture(scope="module")
def harvested(tiny_llama, tiny_model_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run = root / "a"
    harvest_text_store(run, root / "in", tiny_llama, tiny_model_dirs["llama"], layer=LAYER)
    return root, Run(run), str(tiny_model_dirs["llama"])


def test_a_run_on_another_runs_store_resolves_everything_from_it(harvested, tiny_llama):
    root, a, spec = harvested
    b = Run(root / "b")
    train_run(b, {"architecture": "relu", "n_latents": 32}, SMALL, activations=a.dir / "activations", progress=False)
    assert not (b.dir / "activations").exists()
    assert b.data_root == a.dir and b.store_path == a.dir and b.has_tokens
    assert b.model_spec == spec and b.layer == LAYER and b.model_name == tiny_llama.name
    assert b.store().count == a.store().count and b.tokens().contexts.shape == a.tokens().contexts.shape
    assert b.has_sae and len(b.metrics()) == SMALL.total_steps // SMALL.log_every

    steering = open_run(b.dir)                         # no --model, no --layer: the store's harvest recorded them
    assert steering.layer == LAYER and steering.lm.name == tiny_llama.name
    result = evaluate_run(b, lm=tiny_llama, n_tokens=500)
    assert "loss_recovered" in result and (b.dir / "eval.json").is_file()
    built = build_feature_db(b, lm=tiny_llama, n_tokens=300, progress=False)
    assert built.n_features == 32 and b.features_meta["layer"] == LAYER


def test_a_run_on_a_plain_npy_has_no_model_or_tokens(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((600, 8)).astype("float32"))
    run = Run(tmp_path / "run")
    train_run(run, {"architecture": "relu", "n_latents": 16}, SMALL, activations=tmp_path / "x.npy", progress=False)
    assert run.store_path == (tmp_path / "x.npy").resolve() and run.data_root == run.dir
    assert run.model_spec is None and run.layer is None and not run.has_tokens and run.manifest == {}
    assert "loss_recovered" not in evaluate_run(run, n_tokens=100)
    with pytest.raises(ConfigError, match="pass --model and --layer"):
        open_run(run.dir)
    assert main(["steer", str(run.dir), "--prompt", "hi", "--feature", "0=2x"]) != 0


def test_metrics_reader_skips_torn_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n[1, 2]\n" + json.dumps({"step": 2}) + '\n{"step": 3, "lo')
    assert read_metrics(path) == [{"step": 1}, {"step": 2}]
    assert Run(tmp_path).last_metrics() == {"step": 2} and read_metrics(tmp_path / "missing.jsonl") == []
