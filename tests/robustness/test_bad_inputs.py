"""The bad-input table: one row per (command, mistake) with the one-line message the
user must get and a non-zero exit, never a traceback. A new command adds its rows
here. Each row builds its case in a fresh directory (`tmp`), beside a small real
run (`run`, a copy of the web tests' run on the tiny Llama) and a small .npy store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from monosemantic.cli.main import main


def _a_file(tmp: Path) -> Path:
    path = tmp / "not-a-dir"
    path.write_text("a file where a run directory should be")
    return path


def _nan_sae(run: Path) -> Path:
    weights = run / "sae" / "sae_weights.safetensors"
    tensors = load_file(str(weights))
    tensors["W_dec"][3, 0] = float("nan")
    tensors["b_enc"][1] = float("inf")
    save_file(tensors, str(weights))
    return run


# id -> (argv builder (tmp, run, npy, model) -> list[str], expected fragment of the one line)
CASES = {
    "harvest: run dir is a file": (lambda t, r, n, m: ["harvest", str(_a_file(t)), "--model", m, "--tokens", "100"], "is a file"),
    "train: run dir is a file": (lambda t, r, n, m: ["train", str(_a_file(t)), "--activations", str(n), "--latents", "8"], "is a file"),
    "pipeline: run dir is a file": (lambda t, r, n, m: ["pipeline", str(_a_file(t)), "--model", m], "is a file"),
    "explain: run dir is a file": (lambda t, r, n, m: ["explain", str(_a_file(t)), "--explainer", "tokens"], "is a file"),
    "features: run dir is a file": (lambda t, r, n, m: ["features", str(_a_file(t))], "is a file"),
    "eval: run dir is a file": (lambda t, r, n, m: ["eval", str(_a_file(t))], "is a file"),
    "report: run dir is a file": (lambda t, r, n, m: ["report", str(_a_file(t))], "is a file"),
    "steer: non-UTF-8 --prompt": (lambda t, r, n, m: ["steer", str(r), "--prompt", "caf\udce9", "--feature", "1=2"], "not valid UTF-8"),
    "attribute: empty --target": (lambda t, r, n, m: ["attribute", str(r), "--model", m, "--layer", "2", "--prompt", "The river",
                                                           "--target", ""], "--target is empty"),
    "steer: NaN in the SAE": (lambda t, r, n, m: ["steer", str(_nan_sae(r)), "--prompt", "x", "--feature", "1=2"], "NaN or infinite"),
    "features: NaN in the SAE": (lambda t, r, n, m: ["features", str(_nan_sae(r)), "--force"], "NaN or infinite"),
    "train: --latents 10^8 (memory)": (lambda t, r, n, m: ["train", str(t / "r"), "--activations", str(n), "--latents", str(10**8)], "memory"),
    "train: --train-tokens 10^15 (time)": (lambda t, r, n, m: ["train", str(t / "r"), "--activations", str(n), "--latents", "8",
                                                                "--train-tokens", str(10**15)], "would take"),
    "harvest: --tokens 10^15 (disk)": (lambda t, r, n, m: ["harvest", str(t / "r"), "--model", m, "--tokens", str(10**15)], "disk"),
    "explain: --timeout -1": (lambda t, r, n, m: ["explain", str(r), "--client", "openai", "--timeout", "-1"], "--timeout"),
    "explain: --base-url not a url": (lambda t, r, n, m: ["explain", str(r), "--client", "openai", "--base-url", "not a url"], "--base-url"),
}


@pytest.fixture
def env(web_run, tiny_model_dirs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(web_run, run)
    (run / "activations").mkdir()  # what `features` reads to find the model
    (run / "activations" / "manifest.json").write_text(json.dumps({"model": tiny_model_dirs["llama"].name, "model_spec": str(tiny_model_dirs["llama"]), "layer": 2}))
    npy = tmp_path / "acts.npy"
    np.save(npy, np.random.default_rng(0).normal(size=(4096, 16)).astype(np.float32))
    work = tmp_path / "case"
    work.mkdir()
    return work, run, npy, str(tiny_model_dirs["llama"])


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line(case, env, capsys):
    argv_of, expected = CASES[case]
    argv = argv_of(*env)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("monosemantic: error:")]
    assert code != 0, f"{case}: exit 0\n{err}"
    assert len(lines) == 1 and expected in lines[0], f"{case}: expected one line with {expected!r}, got:\n{err}"
