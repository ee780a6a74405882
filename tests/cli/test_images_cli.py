"""`inspect --image`, `image-examples` and `image-probe` on a run of the text pipeline
over a tiny random Idefics3 (the `vlm_run` fixture), and their refusals of bad input."""

from __future__ import annotations

import re

import pytest
import torch
from tiny_vlm import png_header_only, save_picture

from monosemantic.cli.main import main
from monosemantic.features import FeatureDB
from monosemantic.features.image_examples import image_examples_of
from monosemantic.models.images import read_image
from monosemantic.sae import SAEConfig, make_sae, save_sae
from monosemantic.steering.run import open_run


@pytest.fixture(scope="module")
def opened(vlm_run):
    return open_run(vlm_run, dtype="float32")


def _direct_image_acts(run, path, prompt=""):
    """Independent of our hooks: the model's own hidden states and the SAE."""
    inputs = run.lm.encode_image(read_image(path), prompt)
    with torch.inference_mode():
        hidden = run.lm.model(input_ids=inputs.input_ids, **inputs.model_inputs, output_hidden_states=True).hidden_states
    x = hidden[run.layer + 1][0, inputs.image_positions].float()      # [n_image, d]
    with torch.no_grad():
        return x, run.sae.encode(x)


def test_sae_trained_on_text_encodes_image_tokens(opened, vlm_run):
    x, f = _direct_image_acts(opened, vlm_run.parent / "pictures" / "picture-0.png")
    assert torch.isfinite(f).all() and (f >= 0).all()
    l0 = (f > 0).sum(1).float()
    assert (l0 > 0).all() and l0.mean() < f.shape[1] / 2                # sparse codes on every image token
    fve = 1 - ((x - opened.sae.decode(f)) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert fve > 0.05, float(fve)                                        # it reads them in its own space


def test_inspect_image_lists_the_top_features_of_image_and_text(opened, vlm_run, capsys):
    path = vlm_run.parent / "pictures" / "picture-1.png"
    assert main(["inspect", str(vlm_run), "--image", str(path), "--prompt", "a bridge over the river", "--top", "3",
                 "--feature", "5"]) == 0
    out = capsys.readouterr().out
    assert "20 image tokens (tiles 4x4, global 2x2)" in out
    image_part = out.split("top features on the image tokens:")[1].split("top features on the text:")[0]
    rows = [line.split() for line in image_part.strip().splitlines()[1:]]
    _, f = _direct_image_acts(opened, path, "a bridge over the river")
    best = f.max(0).values
    expect = torch.argsort(best, descending=True)[:3]
    assert [int(r[0]) for r in rows] == expect.tolist()
    assert [float(r[1]) for r in rows] == pytest.approx(best[expect].tolist(), abs=2e-3)
    assert "' river'" in out.split("top features on the text:")[1]
    assert "feature 5 over the tiles patches (4 x 4):" in out and "feature 5 over the global patches (2 x 2):" in out


def test_inspect_a_prompt_without_an_image(opened, vlm_run, capsys):
    assert main(["inspect", str(vlm_run), "--prompt", "the river runs to the sea", "--top", "2"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()[2:]]
    ids = torch.tensor([[opened.lm.bos_id] + opened.lm.tokenizer("the river runs to the sea", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        hidden = opened.lm.model(input_ids=ids, output_hidden_states=True).hidden_states[opened.layer + 1][0]
        acts = opened.sae.encode(hidden.float())[2:]                                 # positions 0, 1 never count
    assert [int(r[0]) for r in rows] == torch.argsort(acts.max(0).values, descending=True)[:2].tolist()


def test_image_examples_are_recorded_per_feature(opened, vlm_run, capsys):
    folder = vlm_run.parent / "pictures"
    (folder / "broken.png").write_bytes(b"not an image at all")
    try:
        assert main(["image-examples", str(vlm_run), str(folder), "--top-k", "2"]) == 0
    finally:
        (folder / "broken.png").unlink()
    out = capsys.readouterr().out
    assert "4 images (1 skipped)" in out and "skipped broken.png" in out
    maxima = {}
    for i in range(4):
        _, f = _direct_image_acts(opened, folder / f"picture-{i}.png")
        maxima[f"picture-{i}.png"] = f.max(0).values
    with FeatureDB(vlm_run, readonly=True) as db:
        for feature in (0, 7, 33):
            examples = image_examples_of(db, feature)
            ranked = sorted(maxima, key=lambda n: -float(maxima[n][feature]))[:2]
            assert [e.name for e in examples] == ranked
            for e in examples:
                assert e.max_act == pytest.approx(float(maxima[e.name][feature]), rel=2e-3)
                assert len(e.grid) == 4 and len(e.grid[0]) == 4                      # the tiles view
                assert e.grid[e.peak_row][e.peak_col] == pytest.approx(max(map(max, e.grid)), rel=1e-6)


def test_image_probe_reports_each_feature(vlm_run, capsys, tmp_path):
    concept, other = tmp_path / "concept", tmp_path / "other"
    concept.mkdir(), other.mkdir()
    for i in range(3):
        save_picture(concept / f"c{i}.png", width=48, height=48, colour=(200 + 10 * i, 30, 30))
        save_picture(other / f"o{i}.png", width=48, height=48, seed=10 + i)
    assert main(["image-probe", str(vlm_run), "--concept-images", str(concept), "--other-images", str(other),
                 "--features", "1,2,3"]) == 0
    out = capsys.readouterr().out
    assert "3 features, 3 concept images vs 3 other images" in out
    assert re.search(r"AUROC \d\.\d\d; control: random features firing on some image, mean AUROC", out)
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+ ", line)]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    opened = open_run(vlm_run, dtype="float32")
    c = torch.stack([_direct_image_acts(opened, p)[1].max(0).values for p in sorted(concept.iterdir())])   # [3, n]
    o = torch.stack([_direct_image_acts(opened, p)[1].max(0).values for p in sorted(other.iterdir())])
    for r in rows:  # by hand: means, and AUROC = P(concept image > other image), ties half
        f = int(r[0])
        pairs = c[:, f, None] - o[None, :, f]
        auc = float((pairs > 0).float().mean() + 0.5 * (pairs == 0).float().mean())
        assert float(r[1]) == pytest.approx(float(c[:, f].mean()), abs=2e-3)
        assert float(r[2]) == pytest.approx(float(o[:, f].mean()), abs=2e-3)
        assert float(r[5]) == pytest.approx(auc, abs=0.006)


@pytest.mark.slow
def test_image_probe_finds_the_concept_features_from_text(vlm_run, tmp_path, capsys):
    folder = save_picture(tmp_path / "a.png", width=32, height=32).parent
    assert main(["image-probe", str(vlm_run), "--concept-images", str(folder), "--other-images", str(folder),
                 "--concept", "colours", "--top", "2"]) == 0
    assert "2 features, 1 concept images vs 1 other images" in capsys.readouterr().out


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, tiny_model_dirs):
    """A run of a text-only model: an SAE and the recorded model, nothing else."""
    run = tmp_path_factory.mktemp("text-run")
    save_sae(make_sae(SAEConfig("relu", d_in=64, n_latents=16)), run / "sae")
    (run / "config.json").write_text('{"harvest": {"model": "%s", "layer": 1}}' % tiny_model_dirs["llama"])
    return run


def _fails_in_one_line(argv, capsys, *fragments):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("monosemantic: error:") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_images_are_refused_in_one_line(vlm_run, text_run, tmp_path, capsys):
    good = save_picture(tmp_path / "ok.png", width=32, height=32)
    _fails_in_one_line(["inspect", str(text_run), "--image", str(good)], capsys, "text-only model")
    (tmp_path / "notes.png").write_text("hello, I am text")
    _fails_in_one_line(["inspect", str(vlm_run), "--image", str(tmp_path / "notes.png")], capsys, "not an image")
    _fails_in_one_line(["inspect", str(vlm_run), "--image", str(tmp_path / "missing.png")], capsys, "does not exist")
    huge = tmp_path / "huge.png"  # a 10 kB file declaring 64 MP
    huge.write_bytes(png_header_only(8000, 8000))
    _fails_in_one_line(["inspect", str(vlm_run), "--image", str(huge)], capsys, "8000 x 8000 pixels", "limit")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * (17 * 1024 * 1024))
    _fails_in_one_line(["inspect", str(vlm_run), "--image", str(big)], capsys, "bytes; the limit is")
    _fails_in_one_line(["image-examples", str(vlm_run), str(tmp_path / "nowhere")], capsys, "not a directory")
