"""Steering with an image in the prompt (the tiny Idefics3 run, `vlm_run`): the same
clamp/add/multiply path as text, acting on the image tokens too."""

from __future__ import annotations

import pytest
import torch
from tiny_vlm import picture, save_picture

from monosemantic.cli.main import main
from monosemantic.errors import ModelError
from monosemantic.steering.generate import steered_completions
from monosemantic.steering.interventions import parse_intervention
from monosemantic.steering.run import open_run


@pytest.fixture(scope="module")
def opened(vlm_run):
    return open_run(vlm_run, dtype="float32")


def _steer(run, specs, image, prompt="What is in the picture?"):
    return steered_completions(run.lm, run.sae, run.layer, prompt, [parse_intervention(s) for s in specs],
                               max_acts=run.max_acts, max_new_tokens=6, temperature=0, image=image)


def test_the_image_is_in_the_prompt_and_steering_changes_the_completion(opened):
    image = picture(64, 48, seed=2)
    out = _steer(opened, ["3=+40"], image)
    inputs = opened.lm.encode_image(image, "What is in the picture?")
    with torch.inference_mode():  # no hooks: transformers' own generate on the processor's inputs
        direct = opened.lm.model.generate(inputs.input_ids, **inputs.model_inputs, max_new_tokens=6, do_sample=False,
                                          pad_token_id=0)
    assert out.unsteered == opened.lm.tokenizer.decode(direct[0, inputs.n_tokens:], skip_special_tokens=True)
    assert out.steered != out.unsteered
    assert _steer(opened, ["3=*1", "5=*1"], image).steered == out.unsteered   # a no-op intervention is a no-op


def test_steering_acts_on_the_image_tokens(opened):
    """Multiplying a feature by 0 removes f_i * W_dec_i from the residual at every image
    position where it fires (the SAE error term kept), and changes nothing else."""
    from monosemantic.steering.interventions import steer

    inputs = opened.lm.encode_image(picture(64, 48, seed=4))
    clean = opened.lm.image_residual(inputs, opened.layer).float()                  # [T, d]
    with torch.no_grad():
        acts = opened.sae.encode(clean)
    feature = int(acts[inputs.image_positions].max(0).values.argmax())
    with steer(opened.lm, opened.sae, opened.layer, [parse_intervention(f"{feature}=*0")]):
        with opened.lm.capture_residual(opened.layer) as seen:
            opened.lm.logits(inputs.input_ids, **inputs.model_inputs)
    change = seen[0][0].float() - clean                                             # [T, d]
    expected = -acts[:, feature, None] * opened.sae.W_dec[feature].detach()
    expected[0] = 0                                                                 # the sink is left alone
    torch.testing.assert_close(change, expected, atol=1e-4, rtol=1e-4)
    assert change[inputs.image_positions].norm(dim=1).max() > 0.1 * clean[inputs.image_positions].norm(dim=1).mean()


def test_steer_cli_with_an_image(vlm_run, tiny_model_dirs, tmp_path, capsys):
    path = save_picture(tmp_path / "p.png", width=32, height=32)
    assert main(["steer", str(vlm_run), "--image", str(path), "--prompt", "Describe it.", "--feature", "3=+30",
                 "--max-new-tokens", "4", "--temperature", "0"]) == 0
    assert "steering 3=+30" in capsys.readouterr().out
    (tmp_path / "bad.png").write_bytes(b"plain bytes")
    assert main(["steer", str(vlm_run), "--image", str(tmp_path / "bad.png"), "--prompt", "x", "--feature", "3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an image" in err


def test_a_text_only_model_refuses_an_image(tiny_llama):
    from monosemantic.sae import SAEConfig, make_sae

    sae = make_sae(SAEConfig("relu", d_in=tiny_llama.d_model, n_latents=8))
    with pytest.raises(ModelError, match="text-only model"):
        steered_completions(tiny_llama, sae, 1, "hi", [parse_intervention("1=+1")], image=picture(32, 32))
