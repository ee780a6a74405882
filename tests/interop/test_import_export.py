"""`monosemantic import` / `export` on a real store (the embedded model, layer 15, a
few contexts): the checks against the store, the one-line errors, the recorded
source, and the metadata other tools read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from monosemantic.activations import HarvestConfig, Tokens, harvest
from monosemantic.cli.main import main
from monosemantic.sae import SAEConfig, load_sae, make_sae, save_sae

D = 576


@pytest.fixture(scope="module")
def store_run(tmp_path_factory, embedded_lm):
    """A run directory with a harvested store of 6 contexts x 32 tokens at layer 15."""
    run = tmp_path_factory.mktemp("store-run")
    rng = np.random.default_rng(0)
    contexts = rng.integers(100, 40000, size=(6, 32)).astype(np.int32)
    contexts[:, 0] = embedded_lm.bos_id
    tokens = Tokens(contexts, np.repeat(np.arange(6, dtype=np.int32)[:, None], 32, 1), np.tile(np.arange(32, dtype=np.int32), (6, 1)))
    harvest(embedded_lm, tokens, run / "activations", HarvestConfig(layer=15, shard_contexts=3),
            extra_manifest={"model_spec": "embedded"}, progress=False)
    return run


def _saelens_folder(path, d=D, n=64, **meta):
    torch.manual_seed(0)
    t = {"W_enc": torch.randn(d, n) * 0.05, "W_dec": torch.randn(n, d) * 0.05, "b_enc": torch.zeros(n), "b_dec": torch.zeros(d)}
    path.mkdir(parents=True)
    save_file(t, str(path / "sae_weights.safetensors"))
    cfg = {"architecture": "standard", "d_in": d, "d_sae": n, "apply_b_dec_to_input": True, "normalize_activations": "none",
           "metadata": {"model_name": "HuggingFaceTB/SmolLM2-135M-Instruct", "hook_name": "blocks.15.hook_resid_post", "hook_layer": 15} | meta}
    (path / "cfg.json").write_text(json.dumps(cfg))
    return path


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_wrong_width_is_one_line_naming_both_widths(store_run, tmp_path, capsys):
    source = _saelens_folder(tmp_path / "wide", d=768)
    code, _, err = _cli(capsys, "import", source, tmp_path / "new", "--activations", store_run)
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "d_in=768" in err and "width 576" in err
    assert not (tmp_path / "new" / "sae").exists()


@pytest.mark.parametrize("meta, says", [
    ({"model_name": "gpt2"}, "'gpt2' but the store holds 'SmolLM2-135M-Instruct'"),
    ({"hook_name": "blocks.8.hook_resid_post", "hook_layer": 8}, "after layer 8 but the store holds layer 15"),
    ({"hook_name": "blocks.15.hook_mlp_out"}, "not the residual stream"),
])
def test_other_model_or_layer_is_refused_unless_allowed(store_run, tmp_path, capsys, meta, says):
    source = _saelens_folder(tmp_path / "other", **meta)
    code, _, err = _cli(capsys, "import", source, tmp_path / "new", "--activations", store_run)
    assert code == 1 and says in err and err.count("\n") == 1, err
    code, out, _ = _cli(capsys, "import", source, tmp_path / "new", "--activations", store_run, "--allow-mismatch")
    assert code == 0 and "allowed:" in out
    notes = json.loads((tmp_path / "new" / "sae" / "cfg.json").read_text())["monosemantic"]["source"]["notes"]
    assert any(says in n for n in notes)


def test_import_records_the_source_and_eval_reads_the_lent_store(store_run, tmp_path, capsys):
    source = _saelens_folder(tmp_path / "lens")
    code, out, err = _cli(capsys, "import", source, tmp_path / "new", "--activations", store_run)
    assert code == 0, err
    cfg = json.loads((tmp_path / "new" / "sae" / "cfg.json").read_text())
    assert cfg["monosemantic"]["source"]["format"] == "saelens"
    assert cfg["metadata"]["model_name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert cfg["metadata"]["context_size"] == 32 and cfg["metadata"]["prepend_bos"] is True
    from monosemantic.evals.run import evaluate_run

    result = evaluate_run(tmp_path / "new", n_tokens=100, progress=False)   # the store lent by --activations
    assert result["eval_tokens"] > 0 and result["n_latents"] == 64
    # the same source again is fine; another SAE over it is refused without --force
    assert _cli(capsys, "import", source, tmp_path / "new", "--activations", store_run)[0] == 0
    code, _, err = _cli(capsys, "import", _saelens_folder(tmp_path / "lens2"), tmp_path / "new", "--activations", store_run)
    assert code == 1 and "already holds an SAE" in err


def test_sae_option_imports_then_runs_the_command(store_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(store_run, run)
    code, out, err = _cli(capsys, "eval", run, "--sae", _saelens_folder(tmp_path / "lens"), "--tokens", "100", "--contexts", "1")
    assert code == 0, err
    assert "using" in out and (run / "eval.json").is_file()
    # an SAE of another width: the one-line error, and nothing written
    other = tmp_path / "other"
    shutil.copytree(store_run, other)
    code, _, err = _cli(capsys, "eval", other, "--sae", _saelens_folder(tmp_path / "wide", d=64))
    assert code == 1 and "d_in=64" in err and err.count("\n") == 1
    assert not (other / "sae").exists() and not (other / "eval.json").exists()


def test_export_writes_hub_id_context_size_and_bos(store_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(store_run, run)
    sae = make_sae(SAEConfig("topk", d_in=D, n_latents=64, k=8, norm_scale=0.13))
    save_sae(sae, run / "sae", metadata={"model_name": "SmolLM2-135M-Instruct", "hook_layer": 15})   # an older run's metadata
    for fmt, loadable in (("saelens", "cfg.json"), ("sparsify", "layers.15/cfg.json")):
        code, out, err = _cli(capsys, "export", run, "--format", fmt)
        assert code == 0, err
        assert (run / "export" / fmt / loadable).is_file()
    meta = json.loads((run / "export" / "saelens" / "cfg.json").read_text())["metadata"]
    assert meta["model_name"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["hook_name"] == "blocks.15.hook_resid_post"
    assert meta["context_size"] == 32 and meta["prepend_bos"] is True
    x = torch.randn(10, D) * 170
    torch.testing.assert_close(load_sae(run / "export" / "saelens").encode(x), load_sae(run / "sae").encode(x))
