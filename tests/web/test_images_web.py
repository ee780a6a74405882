"""The image upload API and the feature pages' image examples on the tiny Idefics3
run (`vlm_run`), checked against the model's own hidden states; bad uploads refused
in one line, and the upload written nowhere."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from tiny_vlm import picture, png_header_only

from monosemantic.features.image_examples import build_image_examples
from monosemantic.models.images import image_files
from monosemantic.steering.run import open_run
from monosemantic.web import create_app
from monosemantic.web.state import Limits


def png_bytes(image, marker: str | None = None) -> bytes:
    out, info = io.BytesIO(), PngInfo()
    if marker:
        info.add_text("marker", marker)
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


@pytest.fixture(scope="module")
def opened(vlm_run):
    return open_run(vlm_run, dtype="float32")


@pytest.fixture(scope="module")
def vlm_client(vlm_run, opened):
    with TestClient(create_app(vlm_run, lm=opened.lm, limits=Limits(max_image_bytes=2 * 1024 * 1024))) as c:
        yield c


def test_upload_returns_the_heat_map_of_the_image_patches(vlm_client, opened):
    image = picture(64, 48, seed=3)
    r = vlm_client.post("/api/image?prompt=a%20river", content=png_bytes(image), headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"width": 64, "height": 48, "tokens": 20}
    assert [(v["name"], v["rows"], v["cols"]) for v in body["views"]] == [("tiles", 4, 4), ("global", 2, 2)]
    # independent path: the model's hidden states at the image tokens, through the SAE
    inputs = opened.lm.encode_image(image, "a river")
    with torch.inference_mode():
        hidden = opened.lm.model(input_ids=inputs.input_ids, **inputs.model_inputs, output_hidden_states=True).hidden_states
        acts = opened.sae.encode(hidden[opened.layer + 1][0].float())                  # [T, n]
    top = int(acts[inputs.image_positions].max(0).values.argmax())
    assert body["feature"]["id"] == top == body["top_image"][0]["id"]
    for view, grid in zip(body["views"], inputs.views):
        torch.testing.assert_close(torch.tensor(view["values"]), acts[grid.positions, top], atol=1e-3, rtol=1e-4)
        png = base64.b64decode(view["png"].split(",", 1)[1])
        assert Image.open(io.BytesIO(png)).size[0] >= 64
    assert body["top_text"] and all(t["token"].strip() in ("a", "river") for t in body["top_text"])
    # another feature, asked for by id (the image tokens come before the prompt: same values)
    r = vlm_client.post("/api/image?feature=5&prompt=a%20river", content=png_bytes(image))
    assert r.json()["feature"]["id"] == 5
    torch.testing.assert_close(torch.tensor(r.json()["views"][0]["values"]), acts[inputs.views[0].positions, 5],
                               atol=1e-3, rtol=1e-4)


def test_an_upload_may_exceed_the_json_body_limit(vlm_client):
    """The upload has its own limit (2 MiB here), not the 64 kB of the JSON requests."""
    data = png_bytes(picture(200, 200, seed=1))
    assert 64 * 1024 < len(data) < 2 * 1024 * 1024
    assert vlm_client.post("/api/image", content=data).status_code == 200
    _one_line(vlm_client.post("/api/inspect", json={"prompt": "x" * 70_000}), 413, "limit")


def _one_line(r, status: int, *fragments):
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    for fragment in fragments:
        assert fragment in detail, detail


def test_bad_uploads_are_refused_in_one_line(vlm_client, client):
    post = vlm_client.post
    _one_line(post("/api/image", content=b""), 422, "no image")
    _one_line(post("/api/image", content=b"GIF89a but not really an image"), 400, "not an image")
    _one_line(post("/api/image", content=b"just some text"), 400, "not an image")
    _one_line(post("/api/image", content=png_header_only(6000, 8000)), 400, "6000 x 8000 pixels", "limit")
    _one_line(post("/api/image", content=b"\x89PNG" + b"\0" * (3 * 1024 * 1024)), 413, "limit")
    _one_line(post("/api/image?feature=99999", content=png_bytes(picture(32, 32))), 422, "does not exist")
    # a text-only run (the tiny Llama of tests/web/conftest.py)
    _one_line(client.post("/api/image", content=png_bytes(picture(32, 32))), 400, "text-only model")


def test_the_upload_is_written_nowhere(vlm_client, vlm_run, monkeypatch):
    """Every file opened for writing while the request runs (the app runs in this
    process) is recorded: none may be; and no file under the run or the working
    directory holds the upload's bytes afterwards."""
    import builtins

    written = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, mode="r", *args, **kwargs):
        if any(c in str(mode) for c in "wax+"):
            written.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    def spy_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            written.append(str(path))
        return real_os_open(path, flags, *args, **kwargs)

    marker = "upload-" + os.urandom(8).hex()           # made now: in no file before the request
    data = png_bytes(picture(40, 40, seed=9), marker)
    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    assert vlm_client.post("/api/image", content=data).status_code == 200
    monkeypatch.undo()
    assert written == []
    for root in (vlm_run, Path.cwd()):
        for p in root.rglob("*"):
            if p.is_file() and p.stat().st_size < 50_000_000 and ".git" not in p.parts:
                assert marker.encode() not in p.read_bytes(), p


def test_feature_pages_list_their_image_examples(vlm_client, vlm_run, opened):
    folder = vlm_run.parent / "pictures"
    build_image_examples(vlm_run, opened.lm, opened.sae, opened.layer, image_files(folder), top_k=3, progress=False)
    examples = vlm_client.get("/api/features/7/images").json()
    assert 1 <= len(examples) <= 3 and examples[0]["activation"] >= examples[-1]["activation"]
    first = examples[0]
    assert first["name"].startswith("picture-") and len(first["grid"]) == 4
    png = vlm_client.get(first["src"])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert vlm_client.get("/images/999.png").status_code == 404
    assert vlm_client.get("/images/..%2Fconfig.json.png").status_code in (404, 422)
    page = vlm_client.get("/features/7")
    assert 'id="image-examples"' in page.text


def test_the_image_inspector_link_is_shown_to_vision_runs_only(vlm_client, client):
    assert 'id="nav-image"' in vlm_client.get("/features").text
    assert 'id="nav-image"' not in client.get("/features").text           # the tiny text-only Llama


def test_a_run_served_before_its_model_loads_knows_it_is_a_vision_run(vlm_run, opened):
    from monosemantic.models.loading import is_vision_model
    from monosemantic.run import Run

    assert is_vision_model(Run(vlm_run).model_spec) and not is_vision_model("embedded") and not is_vision_model(None)
    with TestClient(create_app(vlm_run, model=False)) as lazy:                 # no model loaded: the config decides
        assert 'id="nav-image"' in lazy.get("/features").text
