"""Vision-language models through load_model: tiny random Idefics3, LLaVA and Gemma 3
(tests/tiny_vlm.py), saved and loaded back as a user's model is. Image tokens are
located and laid out over the picture, and the residual stream read by our hooks is
the model's own hidden state at every position, image tokens included."""

from __future__ import annotations

import pytest
import torch
from tiny_vlm import FAMILIES, build_tiny_vlm, picture

from monosemantic.errors import ModelError
from monosemantic.models import load_model
from monosemantic.models.vision import VisionLanguageModel, require_vision

# family -> image tokens for a 64 x 48 picture, and the grid of each view
EXPECTED = {
    "idefics3": (20, {"tiles": (4, 4), "global": (2, 2)}),   # 2 x 2 tiles of 2 x 2 tokens, + the global image
    "llava": (16, {"image": (4, 4)}),                        # 4 x 4 patches, CLS dropped
    "gemma3": (4, {"image": (2, 2)}),                        # 16 patches pooled to 4
}


@pytest.fixture(scope="module")
def vlms(tmp_path_factory, tokenizer):
    tok_dir = tmp_path_factory.mktemp("tok")
    tokenizer.save_pretrained(tok_dir)
    return {f: load_model(str(build_tiny_vlm(f, tmp_path_factory.mktemp(f"vlm-{f}"), tok_dir)), dtype="float32")
            for f in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_image_tokens_are_located_and_laid_out(vlms, family):
    lm = vlms[family]
    assert isinstance(lm, VisionLanguageModel) and lm.n_layers == 4 and lm.d_model == 64
    inputs = lm.encode_image(picture(64, 48), "a red bridge")
    ids = inputs.input_ids[0]
    n_image, grids = EXPECTED[family]
    assert len(inputs.image_positions) == n_image
    assert (ids[inputs.image_positions] == lm.image_token_id).all()
    assert (ids == lm.image_token_id).sum() == n_image               # no image token elsewhere
    assert int(ids[0]) == lm.bos_id                                  # the sink's position, as in harvest
    assert lm.tokenizer.decode(ids[-4:].tolist()).strip().endswith("a red bridge")
    assert {v.name: tuple(v.positions.shape) for v in inputs.views} == grids
    laid_out = torch.cat([v.positions.flatten() for v in inputs.views])
    assert sorted(laid_out.tolist()) == inputs.image_positions.tolist()   # every image token exactly once
    for view in inputs.views:
        rows, cols = view.positions.shape
        assert view.frame is not None and view.frame.shape[0] % rows == 0 and view.frame.shape[1] % cols == 0


def test_tiles_are_stitched_in_picture_order(vlms):
    """Idefics3: the left half red, the right half blue -> the stitched frame is too,
    and the tile grid's first column holds tile (1,1)'s tokens."""
    lm = vlms["idefics3"]
    image = picture(64, 64, colour=(255, 0, 0))
    image.paste((0, 0, 255), (32, 0, 64, 64))
    inputs = lm.encode_image(image)
    tiles = next(v for v in inputs.views if v.name == "tiles")
    frame = tiles.frame.astype(int)
    assert frame[:, :28, 0].mean() > 200 and frame[:, :28, 2].mean() < 50
    assert frame[:, 36:, 2].mean() > 200 and frame[:, 36:, 0].mean() < 50
    runs = inputs.image_positions.reshape(5, 4)          # tiles (1,1), (1,2), (2,1), (2,2), then the global image
    assert tiles.positions[:2, :2].flatten().tolist() == runs[0].tolist()
    assert tiles.positions[:2, 2:].flatten().tolist() == runs[1].tolist()   # row 1, column 2: top right
    assert tiles.positions[2:, :2].flatten().tolist() == runs[2].tolist()
    assert next(v for v in inputs.views if v.name == "global").positions.flatten().tolist() == runs[4].tolist()


def test_grid_of_a_run_drops_a_leading_cls_token():
    """LLaVA's "full" feature strategy keeps the CLS embedding first: 1 + g*g tokens."""
    from monosemantic.models.image_layout import _grid

    run = torch.arange(10, 27)                           # 17 positions
    assert _grid(run, None, 2).tolist() == torch.arange(11, 27).reshape(4, 4).tolist()
    assert _grid(torch.arange(6), None, 2).shape == (1, 6)                             # no square: one strip
    assert _grid(torch.arange(12), torch.tensor([1, 6, 8]), 2).tolist() == torch.arange(12).reshape(3, 4).tolist()


@pytest.mark.parametrize("family", FAMILIES)
def test_residual_at_image_positions_is_the_models_hidden_state(vlms, family):
    lm = vlms[family]
    inputs = lm.encode_image(picture(64, 48, seed=1), "the sky")
    with torch.inference_mode():
        direct = lm.model(input_ids=inputs.input_ids, **inputs.model_inputs, output_hidden_states=True).hidden_states
    for layer in (0, 2):
        ours = lm.image_residual(inputs, layer)                        # [T, d]
        torch.testing.assert_close(ours, direct[layer + 1][0], rtol=1e-5, atol=1e-5)
        assert ours[inputs.image_positions].abs().sum() > 0
    # and the text path: what harvest reads (no image)
    ids = torch.tensor([[lm.bos_id] + lm.tokenizer("plain text", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        text_direct = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(lm.residual(ids, 1)[0], text_direct[2][0], rtol=1e-5, atol=1e-5)


def test_steering_patch_reaches_image_positions(vlms):
    """patch_residual edits the image tokens' residual too (steering with an image)."""
    lm = vlms["llava"]
    inputs = lm.encode_image(picture(32, 32))
    before = lm.logits(inputs.input_ids, **inputs.model_inputs)
    with lm.patch_residual(1, lambda h: h * 0):
        after = lm.logits(inputs.input_ids, **inputs.model_inputs)
    assert not torch.allclose(before, after)


def test_text_only_model_is_refused_for_images(tiny_llama):
    with pytest.raises(ModelError, match="text-only model"):
        require_vision(tiny_llama)
