"""The architecture seam: a class registered with one line is everywhere else
(CLI choices and flags, training, FLOPs, bf16 policy, save/load, sweep names) without
touching another file; and every registered class tells the same things."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from monosemantic.cli.main import build_parser
from monosemantic.cli.train import configs_from_args
from monosemantic.errors import ConfigError
from monosemantic.sae import ARCHITECTURES, SAEConfig, load_sae, save_sae
from monosemantic.sae.base import option
from monosemantic.sae.relu import ReLUSAE
from monosemantic.scaling import sweep as sw
from monosemantic.scaling.flops import step_flops
from monosemantic.train import TrainConfig, train_run
from monosemantic.train.loop import resolve_dtype


@dataclasses.dataclass
class ScaledConfig(SAEConfig):
    out_gain: float = option(1.0, "multiplies the reconstruction")


class ScaledReLUSAE(ReLUSAE):
    """relu whose decoder output is multiplied by a setting of its own."""
    config_class = ScaledConfig
    uses = ("l1_coefficient", "out_gain")
    bf16_safe = False

    def decode(self, acts):
        return super().decode(acts) * self.cfg.out_gain


@pytest.fixture
def scaled(monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "scaled", ScaledReLUSAE)   # the one registry line
    return "scaled"


def test_new_architecture_needs_only_its_class_and_a_registry_line(scaled, tmp_path):
    parser = build_parser()
    args = parser.parse_args(["train", str(tmp_path / "run"), "--architecture", scaled, "--out-gain", "0.5",
                              "--latents", "16", "--l1", "0.1"])
    sae_cfg, _ = configs_from_args(args)
    assert sae_cfg == {"architecture": scaled, "n_latents": 16, "out_gain": 0.5, "l1_coefficient": 0.1}
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "scaled: multiplies the reconstruction" in help_text       # flag help names its users
    with pytest.raises(ConfigError, match="--out-gain is not a setting of relu"):
        configs_from_args(parser.parse_args(["train", "r", "--out-gain", "2"]))

    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((512, 8)).astype("float32"))
    cfg = TrainConfig(n_tokens=256, batch_size=64, log_every=2, checkpoint_every=0)
    result = train_run(tmp_path / "run", sae_cfg, cfg, activations=tmp_path / "x.npy", progress=False)
    assert type(result.sae) is ScaledReLUSAE and result.sae.cfg.out_gain == 0.5
    loaded = load_sae(tmp_path / "run" / "sae")
    assert type(loaded) is ScaledReLUSAE and loaded.cfg.out_gain == 0.5
    assert json.loads((tmp_path / "run" / "sae" / "cfg.json").read_text())["architecture"] == "standard"
    assert resolve_dtype("auto", scaled) == "float32"
    assert step_flops(scaled, 8, 16, 64).total == step_flops("relu", 8, 16, 64).total
    assert sw.RunSpec(scaled, 16, 640, l1_coefficient=0.5).name == "scaled-n16-t640-l1_0.5"


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_each_class_declares_its_knob_and_settings(arch):
    cls = ARCHITECTURES[arch]
    names = {f.name for f in dataclasses.fields(cls.config_class)}
    assert cls.sparsity_knob in names and set(cls.uses) <= names
    assert cls.sparsity_knob in sw.KNOBS, "scaling/spec.py RunSpec needs a field for this knob"
    assert cls.penalty_term is None or cls.sparsity_knob in cls.uses


def test_sweep_names_runs_by_their_own_knob():
    assert sw.RunSpec("relu", 16, 640).name == "relu-n16-t640-l1_3"
    assert sw.RunSpec("topk", 16, 640, k=8).name == "topk-n16-t640-k8"
    assert sw.RunSpec("jumprelu", 16, 640, l0_coefficient=0.5).name == "jumprelu-n16-t640-l0_0.5"
    assert sw.RunSpec("jumprelu", 16, 640, l0_coefficient=0.5).sae_cfg() == {
        "architecture": "jumprelu", "n_latents": 16, "l0_coefficient": 0.5}
    assert sw.penalty_coefficient({"architecture": "jumprelu", "l0_coefficient": 0.5}) == ("l0", 0.5)
    assert sw.penalty_coefficient({"architecture": "batchtopk", "k": 4}) == (None, 0.0)


def test_plain_saelens_architectures_map_through_the_classes(tmp_path):
    for ours in ("relu", "topk", "jumprelu"):
        sae = ARCHITECTURES[ours](SAEConfig(ours, d_in=4, n_latents=6, k=2))
        save_sae(sae, tmp_path / ours)
        cfg_path = tmp_path / ours / "cfg.json"
        cfg = json.loads(cfg_path.read_text())
        del cfg["monosemantic"]                          # as SAELens itself writes it
        cfg_path.write_text(json.dumps(cfg))
        assert load_sae(tmp_path / ours).cfg.architecture == ours
    with torch.no_grad():
        assert load_sae(tmp_path / "topk").cfg.k == 2
