"""SAEs on the per-layer stores of `harvest --layers`: the run resolves the store, its
layer and its tokens, so eval, features and steering read the layer the SAE was
trained on (not the middle layer, not another layer's store)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monosemantic.cli.main import main
from monosemantic.evals.spliced import spliced_stats
from monosemantic.features import FeatureDB
from monosemantic.models import load_model
from monosemantic.run import Run
from monosemantic.steering.run import open_run

from tiny_vlm import text_file


def _cli(*argv) -> None:
    assert main(["--quiet", *map(str, argv)]) == 0, argv


@pytest.fixture(scope="module")
def layer_runs(tmp_path_factory, tiny_model_dirs):
    root = tmp_path_factory.mktemp("layer-stores")
    run, model = root / "run", str(tiny_model_dirs["llama"])
    _cli("harvest", run, "--model", model, "--inputs", text_file(root / "text.txt"), "--tokens", 2500, "--ctx-len", 32,
         "--layers", "1,3", "--dtype", "float32")
    common = ["--latents", 32, "--train-tokens", 12800, "--batch-size", 128]
    _cli("train", run, "--activations", run / "activations-layer1", *common)       # the harvest's own run dir
    _cli("train", root / "lent3", "--activations", run / "activations-layer3", *common)  # another run dir lends it
    return root, run, model


def test_run_resolves_a_per_layer_store(layer_runs):
    root, run, _ = layer_runs
    own, lent = Run(run), Run(root / "lent3")
    assert (own.layer, lent.layer) == (1, 3)
    assert own.store_dir == run / "activations-layer1" and lent.store_dir == run / "activations-layer3"
    assert own.data_root == lent.data_root == run and own.has_tokens and lent.has_tokens
    assert own.store().layer == 1 and lent.store().layer == 3
    assert own.manifest["layer"] == 1 and own.model_spec == layer_runs[2]
    assert json.loads((run / "sae" / "cfg.json").read_text())["hook_layer"] == 1


@pytest.mark.parametrize("name,layer,other", [("run", 1, 3), ("lent3", 3, 1)])
def test_eval_features_and_steering_read_the_sae_layer(layer_runs, name, layer, other):
    root, run, model = layer_runs
    target = root / name
    _cli("eval", target, "--tokens", 500, "--contexts", 2)
    result = json.loads((target / "eval.json").read_text())
    assert "loss_recovered" in result

    # The spliced loss is the one at the SAE's layer, on the same held-out contexts.
    r = Run(target)
    lm, sae, store = load_model(model, dtype="float32"), r.sae().eval(), r.store()
    from monosemantic.evals.run import heldout_contexts

    contexts = heldout_contexts(r, 2)
    mean = torch.from_numpy(store.gather(store.split_indices("train")[:20_000]).mean(0))
    with torch.no_grad():
        at = {x: spliced_stats(lm, x, contexts, lambda h: sae.decode(sae.encode(h)), mean,
                               outlier_threshold=store.manifest["outlier_threshold"]).ce_sae for x in (layer, other)}
    assert result["spliced_ce_sae"] == pytest.approx(at[layer], rel=1e-4)
    assert result["spliced_ce_sae"] != pytest.approx(at[other], rel=1e-4)

    # A top example's activation is the SAE's encoding of that layer's residual there.
    _cli("features", target, "--tokens", 600)
    tokens = r.tokens()
    with FeatureDB(target / "features.db", readonly=True) as db:
        assert int(db.meta["layer"]) == layer
        fid = max(db.max_activations().items(), key=lambda kv: kv[1])[0]
        ex = db.get(fid).top[0]
    ids = torch.from_numpy(tokens.contexts[ex.context_id : ex.context_id + 1].astype(np.int64))
    with torch.no_grad():
        acts = {x: float(sae.encode(lm.residuals(ids, [x])[x][0, ex.position].float()[None])[0, fid]) for x in (layer, other)}
    assert ex.activation == pytest.approx(acts[layer], rel=1e-2), acts  # features loads the model in `auto` dtype
    assert ex.activation != pytest.approx(acts[other], rel=1e-1), acts

    assert open_run(target, dtype="float32").layer == layer


def test_the_store_named_by_train_activations_wins_over_the_runs_own(tmp_path):
    run = Run(tmp_path / "run")
    (run.dir / "activations").mkdir(parents=True)           # a single-layer harvest of its own
    (run.dir / "activations-layer6").mkdir()
    run.record("train", {"activations": str(run.dir / "activations-layer6")})
    assert run.store_dir == run.dir / "activations-layer6" and run.store_path == run.store_dir and run.data_root == run.dir
    plain = Run(tmp_path / "plain")
    (plain.dir / "activations").mkdir(parents=True)
    assert plain.store_dir == plain.dir / "activations" and plain.store_path == plain.data_root == plain.dir


def test_training_a_run_of_per_layer_stores_without_activations_names_them(layer_runs, tmp_path, capsys):
    _, run, _ = layer_runs
    assert main(["--quiet", "train", str(run), "--latents", "32", "--train-tokens", "1280", "--batch-size", "128"]) != 0
    err = capsys.readouterr().err
    assert "per-layer stores" in err and "activations-layer1" in err and "activations-layer3" in err and "Traceback" not in err
