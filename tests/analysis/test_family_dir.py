"""A family directory: trained, adopted and resumed by `monosemantic family`, read
by analysis.family with the issue's one-line refusals. Real training on tiny .npy
stores (a few seconds); the CLI runs in-process through main()."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monosemantic.analysis.family import FamilyError, open_family, served_run
from monosemantic.cli.main import main
from monosemantic.train import TrainConfig
from monosemantic.train.run import train_runs

TINY = ["--train-tokens", "2048", "--batch-size", "256", "--eval-tokens", "500"]


def npy_store(path, d=16, seed=0):
    np.save(path, np.random.default_rng(seed).standard_normal((3000, d)).astype(np.float32))
    return path


def test_family_trains_tabulates_and_resumes(tmp_path, capsys):
    store = npy_store(tmp_path / "x.npy")
    fam = tmp_path / "fam"
    assert main(["family", str(fam), "--activations", str(store), "--latents", "64,16,32", *TINY]) == 0
    table = json.loads((fam / "family_table.json").read_text())["members"]
    assert [r["name"] for r in table] == ["n16", "n32", "n64"]            # sorted by size
    assert all(r["fve"] is not None and r["l0"] > 0 and r["dead_fraction"] is not None for r in table)
    assert "| n64 | 64 |" in (fam / "family_table.md").read_text()
    family = open_family(fam / "n32")                                       # a member finds its family
    assert family.dir == fam and family.sizes == [16, 32, 64]
    assert served_run(fam) == fam / "n64"
    stamp = (fam / "n64" / "sae" / "sae_weights.safetensors").stat().st_mtime_ns
    evaluated = (fam / "n64" / "eval.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["family", str(fam)]) == 0                                  # rerun: nothing trained or evaluated again
    assert (fam / "n64" / "sae" / "sae_weights.safetensors").stat().st_mtime_ns == stamp
    assert (fam / "n64" / "eval.json").stat().st_mtime_ns == evaluated
    assert "| n16 | 16 |" in capsys.readouterr().out


def test_family_adopts_member_runs_trained_elsewhere(tmp_path):
    """The layout of members trained by train_runs into FAMILY/n<size> without
    family.json: adopted, finished members skipped, the unfinished one trained."""
    store = npy_store(tmp_path / "x.npy")
    fam = tmp_path / "fam"
    cfg = TrainConfig(n_tokens=2048, batch_size=256)
    train_runs([(fam / "n8", {"n_latents": 8}, cfg), (fam / "n24", {"n_latents": 24}, cfg)], activations=store, progress=False)
    stamp = (fam / "n8" / "sae" / "sae_weights.safetensors").stat().st_mtime_ns
    assert main(["family", str(fam), "--eval-tokens", "500"]) == 0
    assert (fam / "n8" / "sae" / "sae_weights.safetensors").stat().st_mtime_ns == stamp
    assert [r["name"] for r in json.loads((fam / "family_table.json").read_text())["members"]] == ["n8", "n24"]
    assert json.loads((fam / "family.json").read_text())["activations"] == str(store.resolve())


def _one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_refusals_name_the_mismatch_or_the_command_to_run_first(tmp_path, capsys):
    a, b = npy_store(tmp_path / "a.npy"), npy_store(tmp_path / "b.npy", seed=1)
    cfg = TrainConfig(n_tokens=512, batch_size=256)
    train_runs([(tmp_path / "mixed" / "n8", {"n_latents": 8}, cfg)], activations=a, progress=False)
    train_runs([(tmp_path / "mixed" / "n16", {"n_latents": 16}, cfg)], activations=b, progress=False)
    err = _one_line_error(capsys, ["analyze", "geometry", str(tmp_path / "mixed")])
    assert "different activation stores" in err and "n8" in err and "n16" in err
    err = _one_line_error(capsys, ["family", str(tmp_path / "mixed")])               # adopting refuses them too
    assert "different stores" in err

    wide = npy_store(tmp_path / "wide.npy", d=24)
    train_runs([(tmp_path / "widths" / "n8", {"n_latents": 8}, cfg)], activations=a, progress=False)
    train_runs([(tmp_path / "widths" / "n16", {"n_latents": 16}, cfg)], activations=wide, progress=False)
    with pytest.raises(FamilyError, match="different input widths"):
        open_family(tmp_path / "widths")

    # an SAE of another model copied into the family (its cfg.json names that model)
    models = tmp_path / "models"
    train_runs([(models / "n8", {"n_latents": 8}, cfg), (models / "n16", {"n_latents": 16}, cfg)], activations=a, progress=False)
    for name, model in (("n8", "SmolLM2-135M"), ("n16", "gemma-3-270m")):
        path = models / name / "sae" / "cfg.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "model_name": model}))
    err = _one_line_error(capsys, ["analyze", "geometry", str(models)])
    assert "different models" in err and "gemma-3-270m" in err

    train_runs([(tmp_path / "one" / "n8", {"n_latents": 8}, cfg)], activations=a, progress=False)
    err = _one_line_error(capsys, ["analyze", "geometry", str(tmp_path / "one")])
    assert "only n8" in err and "monosemantic family" in err
    err = _one_line_error(capsys, ["analyze", "geometry", str(tmp_path / "nothing")])
    assert "monosemantic family" in err
    err = _one_line_error(capsys, ["family", str(tmp_path / "new"), "--activations", str(a), "--latents", "8"])
    assert "at least two sizes" in err
    err = _one_line_error(capsys, ["family", str(tmp_path / "new"), "--latents", "8,x"])
    assert "--latents" in err


def test_an_analysis_of_members_without_features_db_says_what_to_run(tmp_path, capsys):
    store = npy_store(tmp_path / "x.npy")
    fam = tmp_path / "fam"
    assert main(["family", str(fam), "--activations", str(store), "--latents", "8,16", *TINY]) == 0
    err = _one_line_error(capsys, ["analyze", "geometry", str(fam)])
    assert "features.db" in err and f"monosemantic features {fam / 'n8'}" in err


def test_family_from_a_sweeps_planner(tmp_path):
    """--sweep: the sizes and lengths `scaling plan` gives for three budgets, the
    sweep's other settings and its store."""
    from monosemantic.scaling.family import family_budgets
    from monosemantic.scaling.fit import fit_sweep
    from monosemantic.scaling.plan import plan
    from monosemantic.scaling.sweep import collect, load_spec, run_sweep

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"activations": str(npy_store(tmp_path / "x.npy")), "architecture": "relu", "l1_coefficient": 1.0,
                                "batch_size": 64, "lr": 3e-3, "eval_tokens": 256, "eval_seed": 0,
                                "grid": {"n_latents": [16, 32], "n_tokens": [64 * 40, 64 * 80]}}))
    run_sweep(tmp_path / "sweep", load_spec(spec), progress=False)
    fit = fit_sweep(collect(tmp_path / "sweep"))
    want = [plan(fit, b, batch_size=64) for b in family_budgets(fit, 2.0)]
    assert main(["family", str(tmp_path / "fam"), "--sweep", str(tmp_path / "sweep"), "--factor", "2", "--eval-tokens", "300"]) == 0
    family = open_family(tmp_path / "fam")
    assert family.sizes == [p.n_latents for p in want]
    for m, p in zip(family.members, want):
        assert m.config["train"]["train"]["n_tokens"] == p.n_tokens and m.config["train"]["train"]["batch_size"] == 64


def test_a_plain_run_is_not_taken_for_a_member_of_its_parent(tmp_path, capsys):
    """runs/main owns its store; runs/other lends it. Analysing runs/main must not
    adopt runs/ as a family of the two."""
    runs = tmp_path / "runs"
    (runs / "main").mkdir(parents=True)
    store = npy_store(runs / "main" / "x.npy")
    cfg = TrainConfig(n_tokens=512, batch_size=256)
    train_runs([(runs / "main", {"n_latents": 8}, cfg), (runs / "other", {"n_latents": 16}, cfg)], activations=store, progress=False)
    err = _one_line_error(capsys, ["analyze", "geometry", str(runs / "main")])
    assert "one run with its own store" in err and "family directory" in err
    assert open_family(runs / "other").sizes == [8, 16]                    # a lending run still finds its family
    from monosemantic.analysis.family import member_family
    from monosemantic.report.family import family_section
    assert member_family(runs / "main") is None and member_family(runs / "other") == runs
    assert family_section(runs / "main", tmp_path / "report") == []      # no "Family runs" heading in its report
