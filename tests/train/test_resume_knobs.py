"""Resuming a checkpoint after a default changed: the run continues with the knobs it
was trained with (train/knobs.py), or is refused in one line naming the knob."""

from __future__ import annotations

import pytest
import torch
from sparse_dictionary import sparse_rows

from monosemantic.errors import ConfigError, StoreError
from monosemantic.sae import SAEConfig
from monosemantic.sae import batchtopk
from monosemantic.sae.batchtopk import BatchTopKSAE
from monosemantic.sae.topk import TopKSAE
from monosemantic.state_file import load_state
from monosemantic.train import TrainConfig, train_sae
from monosemantic.train import loop

D, N, B, STEPS, AT = 16, 64, 128, 30, 10


@pytest.fixture(scope="module")
def data() -> list[torch.Tensor]:
    x = torch.from_numpy(sparse_rows(B * STEPS, seed=2, d=D, n_true=48))
    return list(x.split(B))


def cfg() -> TrainConfig:
    return TrainConfig(n_tokens=B * STEPS, batch_size=B, lr=3e-3, log_every=5, checkpoint_every=AT)


def interrupt(data, sae_cfg, out) -> None:
    """Train until the stream ends after AT steps: the checkpoint of step AT stays."""
    with pytest.raises(StoreError, match="ended"):
        train_sae(data[:AT], sae_cfg, cfg(), out_dir=out, progress=False)


def edit_checkpoint(out, change) -> None:
    path = out / "checkpoints" / "latest.pt"
    state = load_state(path)
    change(state)
    torch.save(state, path)


def assert_same(a, b) -> None:
    for name, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[name], rtol=0, atol=0, msg=name)


def test_checkpoints_record_the_knobs_outside_the_configs(data, tmp_path):
    for arch in ("topk", "jumprelu", "matryoshka"):
        train_sae(data, SAEConfig(arch, D, N, k=4), cfg(), out_dir=tmp_path / arch, progress=False)
    knobs = {arch: load_state(tmp_path / arch / "checkpoints" / "latest.pt")["knobs"] for arch in ("topk", "jumprelu", "matryoshka")}
    assert knobs["topk"] == {"lr_scales": [2.0], "dtype": loop.resolve_dtype("auto", "topk"), "dead_window": B * STEPS // 4, "aux_k": D // 2}
    assert knobs["jumprelu"]["lr_scales"] == [1.0, 3.0] and "aux_k" not in knobs["jumprelu"]
    assert knobs["matryoshka"]["threshold_ema"] == batchtopk.THRESHOLD_EMA and knobs["matryoshka"]["widths"] == [1, 4, 16, 64]


def set_lr_scale(monkeypatch, value):
    monkeypatch.setattr(TopKSAE, "LR_SCALE", value)


def set_threshold_ema(monkeypatch, value):
    monkeypatch.setattr(batchtopk, "THRESHOLD_EMA", value)    # the module's default, as an edit of it would
    monkeypatch.setattr(BatchTopKSAE, "threshold_ema", value)


def set_dead_window(monkeypatch, value):
    monkeypatch.setattr(TrainConfig, "dead_window", property(lambda self: value))


def set_auto_dtype(monkeypatch, value):
    monkeypatch.setattr(loop, "resolve_dtype", lambda name, arch: value)


@pytest.mark.parametrize("arch, knob, change, old, new", [
    ("topk", "lr_scales", set_lr_scale, 2.0, 3.0),
    ("batchtopk", "threshold_ema", set_threshold_ema, 0.01, 0.3),
    ("topk", "dead_window", set_dead_window, 600, 128),        # the window's formula (AuxK trains the latents it calls dead)
    ("relu", "dtype", set_auto_dtype, "bfloat16", "float32"),  # --train-dtype auto, resumed on a machine that picks otherwise
])
def test_a_changed_default_resumes_with_the_checkpoints_value(arch, knob, change, old, new, data, tmp_path, monkeypatch, capsys):
    sae_cfg = SAEConfig(arch, D, N, k=4, l1_coefficient=1.0)
    change(monkeypatch, old)
    reference = train_sae(data, sae_cfg, cfg(), progress=False).sae
    interrupt(data, sae_cfg, tmp_path)
    change(monkeypatch, new)                      # the new version's default
    resumed = train_sae(data, sae_cfg, cfg(), out_dir=tmp_path, resume=True, progress=False)
    assert resumed.resumed_from == AT
    assert_same(resumed.sae, reference)
    note = capsys.readouterr().err
    assert "checkpoint's own training knobs" in note and knob in note, note


def test_a_knob_this_version_cannot_set_is_refused_in_one_line(data, tmp_path):
    sae_cfg = SAEConfig("topk", D, N, k=4)
    interrupt(data, sae_cfg, tmp_path)
    edit_checkpoint(tmp_path, lambda s: s["knobs"].update(aux_k=3))    # an AuxK width from another default
    with pytest.raises(ConfigError, match=r"aux_k 3 .* would use 8.*--force") as e:
        train_sae(data, sae_cfg, cfg(), out_dir=tmp_path, resume=True, progress=False)
    assert "\n" not in str(e.value)
    edit_checkpoint(tmp_path, lambda s: s["knobs"].update(aux_k=8, future_knob=1))
    with pytest.raises(ConfigError, match="future_knob"):
        train_sae(data, sae_cfg, cfg(), out_dir=tmp_path, resume=True, progress=False)


def test_an_old_checkpoint_without_knobs_keeps_the_lr_scales_of_its_optimiser_state(data, tmp_path, monkeypatch, capsys):
    sae_cfg = SAEConfig("topk", D, N, k=4)
    reference = train_sae(data, sae_cfg, cfg(), progress=False).sae   # at LR_SCALE 2
    interrupt(data, sae_cfg, tmp_path)
    edit_checkpoint(tmp_path, lambda s: s.pop("knobs"))
    set_lr_scale(monkeypatch, 3.0)
    assert_same(train_sae(data, sae_cfg, cfg(), out_dir=tmp_path, resume=True, progress=False).sae, reference)
    assert "predates recorded training knobs" in capsys.readouterr().err

    # older still: parameter groups without an lr_scale trained at 1x, as the loop read them
    set_lr_scale(monkeypatch, 1.0)
    reference = train_sae(data, sae_cfg, cfg(), progress=False).sae
    interrupt(data, sae_cfg, tmp_path / "older")
    set_lr_scale(monkeypatch, 2.0)

    def strip(state):
        state.pop("knobs")
        for group in state["optimizer"]["param_groups"]:
            group.pop("lr_scale")
    edit_checkpoint(tmp_path / "older", strip)
    assert_same(train_sae(data, sae_cfg, cfg(), out_dir=tmp_path / "older", resume=True, progress=False).sae, reference)
