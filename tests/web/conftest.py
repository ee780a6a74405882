"""A small real run for the web tests: the tiny random Llama (tests/conftest.py), a
ReLU SAE saved in the run's own format, features.db built by the real builder, an
eval.json, training metrics and a few explanations and scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from feature_helpers import MULTILINGUAL, multilingual_tokens  # noqa: E402,F401 (MULTILINGUAL: for the tests)

from fastapi.testclient import TestClient  # noqa: E402

from monosemantic.features import FeatureDB, build_feature_db  # noqa: E402
from monosemantic.sae import SAEConfig, load_sae, make_sae, save_sae  # noqa: E402
from monosemantic.web import create_app  # noqa: E402

LAYER, N_LATENTS = 2, 48


def build_web_run(lm, run: Path) -> Path:
    sae = make_sae(SAEConfig("relu", d_in=lm.d_model, n_latents=N_LATENTS))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random directions, biased so that features fire at different rates
        sae.W_dec.copy_(torch.randn(N_LATENTS, lm.d_model, generator=g) / lm.d_model**0.5)
        sae.W_enc.copy_(sae.W_dec.T * 3.0)
        sae.b_enc.copy_(-0.3 * torch.rand(N_LATENTS, generator=g))
    save_sae(sae, run / "sae")
    build_feature_db(run, lm=lm, sae=load_sae(run / "sae"), tokens=multilingual_tokens(lm.tokenizer, 24, 32, lm.bos_id), layer=LAYER,
                     n_tokens=600, neurons=True, progress=False)
    with FeatureDB(run) as db:
        for fid in range(0, N_LATENTS, 3):
            db.add_explanation(fid, "test-explainer", f"explanation number {fid} about {'rivers' if fid % 2 else 'mountains'}")
            db.add_score(fid, "detection", fid / N_LATENTS)
            db.add_explanation(fid, "n2g", f"of …[[ token{fid}]]")  # as `interpret` writes them
            db.add_score(fid, "n2g_f1", 1 - fid / N_LATENTS)
    (run / "eval.json").write_text(json.dumps({"fve": 0.8, "l0": 31.5, "dead_fraction": 0.05, "loss_recovered": 0.9,
                                               "log10_density_hist": [1, 2], "log10_density_edges": [-3, -2, -1]}))
    with open(run / "metrics.jsonl", "w") as f:
        for step in range(0, 200, 10):
            f.write(json.dumps({"step": step, "loss": 1.0 / (step + 1), "l0": 50 - step / 10, "fve": step / 250}) + "\n")
    return run


@pytest.fixture(scope="session")
def web_run(tiny_llama, tmp_path_factory) -> Path:
    return build_web_run(tiny_llama, tmp_path_factory.mktemp("web-run"))


@pytest.fixture(scope="module")
def client(web_run, tiny_llama):
    """The app on the shared web run with the tiny model loaded, one per test module."""
    with TestClient(create_app(web_run, lm=tiny_llama)) as c:
        yield c
