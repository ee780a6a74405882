"""The web app through the ASGI test client: every page and endpoint, validation
errors, the model lock, and runs with a missing or old database."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading

import pytest
import torch
from fastapi.testclient import TestClient

from monosemantic.cli.main import build_parser
from monosemantic.features import FeatureDB
from monosemantic.steering.interventions import Intervention, steer
from monosemantic.web import create_app

N = 48


@pytest.fixture(scope="module")
def browse_only(web_run):
    with TestClient(create_app(web_run, model=False)) as c:
        yield c


@pytest.mark.parametrize("url, marker", [
    ("/", 'id="eval-table"'), ("/features", 'id="feature-table"'), ("/features/2", 'id="top-examples"'),
    ("/inspect", 'id="inspect-form"'), ("/steer", 'id="steer-form"'), ("/steer?feature=5", 'value="5"'),
    ("/search", 'id="search-form"'), ("/docs", 'id="api-endpoints"'),
])
def test_pages_render(client, url, marker):
    r = client.get(url)
    assert r.status_code == 200 and marker in r.text
    assert "http://" not in r.text.replace("http://www.w3.org", "") and "https://" not in r.text  # no CDN on any page


def test_overview_plots_and_static(client):
    html = client.get("/").text
    # readable names and formatted numbers, not raw keys (eval.json: dead_fraction 0.05, loss_recovered 0.9)
    assert "loss recovered (vs zero ablation)</th><td>90 %" in html and "dead features</th><td>5 %" in html
    assert "dead_fraction" not in html and "n_tokens" not in html and "tokens streamed</th><td>" in html
    for src in re.findall(r'src="(/plots/[^"]+)"', html):
        assert client.get(src).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"/plots/training_curves.png", "/plots/density.png"} <= set(re.findall(r'src="(/plots/[^"]+)"', html))
    for asset in ("/static/style.css", "/static/app.js"):
        assert client.get(asset).status_code == 200
    info = client.get("/api/run").json()
    assert info["features_db"]["n_features"] == N and info["eval"]["fve"] == "0.8"


def test_feature_list_sort_filter_paginate(client, web_run):
    with FeatureDB(web_run) as db:
        expected = [s.id for s in db.list(sort="density", limit=None)]
    page1 = client.get("/api/features", params={"limit": 10}).json()
    page2 = client.get("/api/features", params={"limit": 10, "offset": 10}).json()
    assert [r["id"] for r in page1["items"] + page2["items"]] == expected[:20] and page1["has_more"]
    last = client.get("/api/features", params={"limit": 10, "offset": 40}).json()
    assert len(last["items"]) == 8 and not last["has_more"]
    rare = client.get("/api/features", params={"sort": "max_act", "descending": False, "max_density": 0.2, "live_only": True}).json()["items"]
    assert rare and all(0 < r["density"] <= 0.2 for r in rare)
    assert [r["max_act"] for r in rare] == sorted(r["max_act"] for r in rare)
    rivers = client.get("/api/features", params={"explanation": "rivers"}).json()["items"]
    assert sorted(r["id"] for r in rivers) == [i for i in range(0, N, 3) if i % 2]
    scored = client.get("/api/features", params={"sort": "score", "min_score": 0.5}).json()["items"]
    assert [r["id"] for r in scored] == sorted((i for i in range(0, N, 3) if i / N >= 0.5), reverse=True)
    html = client.get("/features", params={"limit": 5, "explanation": "mountains", "min_density": ""}).text
    assert html.count('class="feature-link"') == 5 and 'id="next-page"' in html
    assert "explanation=mountains" in re.search(r'id="next-page" href="([^"]+)"', html).group(1)


def test_list_shows_and_sorts_by_a_chosen_scorer(client):
    by_n2g = client.get("/api/features", params={"sort": "score", "scorer": "n2g_f1", "min_score": 0.0}).json()["items"]
    assert [r["id"] for r in by_n2g] == list(range(0, N, 3))  # n2g_f1 = 1 - id/N: the reverse of detection's order
    assert by_n2g[0]["score"] == 1.0
    html = client.get("/features", params={"sort": "score", "scorer": "n2g_f1"}).text
    assert '<option value="n2g_f1" selected>' in html and "(n2g_f1)</span>" in html
    page = client.get("/features/3").text
    assert "score · n2g_f1" in page and "token3" in page and ">n2g<" in page


def test_feature_page_and_json(client, web_run):
    with FeatureDB(web_run) as db:
        fid = db.list(sort="density", live_only=True, limit=1)[0].id
        f = db.get(fid)
    r = client.get(f"/features/{fid}")
    html = r.text
    assert r.status_code == 200 and f"Feature #{fid}" in html
    assert 'background:rgba(255,120,0,' in html and 'title="activation ' in html  # colour + hover value
    assert f'href="/steer?feature={fid}"' in html and 'id="histogram"' in html
    for nb, _ in f.neighbours:
        assert f'href="/features/{nb}"' in html
    assert f.promoted[0].token.replace("\n", "↵").replace("&", "&amp;").replace("<", "&lt;") in html
    data = client.get(f"/api/features/{fid}").json()
    assert data["id"] == fid and len(data["top"]) == len(f.top) and data["top"][0]["acts"]
    assert "explanation number 3 about rivers" in client.get("/features/3").text


def test_search(client, web_run):
    r = client.get("/api/search", params={"q": "mountains", "by": "explanation"}).json()
    assert sorted(i["id"] for i in r["items"]) == [i for i in range(0, N, 3) if i % 2 == 0]
    with FeatureDB(web_run) as db:
        ex = db.get(db.list(sort="density", limit=1)[0].id).top[0]
    token = ex.tokens[ex.position - ex.start]
    hits = client.get("/api/search", params={"q": token, "by": "tokens"}).json()["items"]
    assert hits and all(h["activation"] > 0 for h in hits)
    assert "#" in client.get("/search", params={"q": token}).text
    assert 'id="explanation-results"' in client.get("/search", params={"q": "rivers", "by": "explanation"}).text


def test_inspect(client, tiny_llama):
    prompt = "The river flows into the sea near the mountains."
    data = client.post("/api/inspect", json={"prompt": prompt}).json()
    n = len(tiny_llama.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert len(data["tokens"]) == n and "".join(t["token"] for t in data["tokens"]) == prompt
    assert data["top"] and all(0 <= f["id"] < N for t in data["tokens"] for f in t["features"])
    acts = [f["activation"] for f in data["tokens"][0]["features"]]
    assert acts == sorted(acts, reverse=True)


def test_steering_matches_generate_and_streams(client, tiny_llama, web_run):
    """Greedy decoding of the two rows equals HF generate without and with steer()."""
    body = {"prompt": "Hello there", "interventions": [{"feature": 2, "mode": "add", "value": 40}],
            "max_new_tokens": 6, "temperature": 0, "chat": False}
    r = client.post("/api/steer", json=body).json()
    sae = client.app.state.run.sae
    ids = torch.tensor([[tiny_llama.bos_id] + tiny_llama.tokenizer("Hello there", add_special_tokens=False)["input_ids"]])

    def greedy():
        out = tiny_llama.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                                        pad_token_id=tiny_llama.tokenizer.eos_token_id)
        return tiny_llama.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    assert r["unsteered"] == greedy()
    with steer(tiny_llama, sae, 2, [Intervention(2, "add", 40.0)], positions="generated"):
        assert r["steered"] == greedy()
    assert r["steered"] != r["unsteered"] and r["interventions"] == ["2=+40"]

    stream = client.post("/api/steer/stream", json=body | {"temperature": 0.8, "seed": 3})
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    events = [__import__("json").loads(line[6:]) for line in stream.text.split("\n\n") if line.startswith("data: ")]
    assert events[0]["type"] == "start" and events[-1]["type"] == "done"
    for row in ("unsteered", "steered"):
        assert "".join(e["text"] for e in events if e["type"] == "token" and e["row"] == row) == events[-1][row]
    again = client.post("/api/steer", json=body | {"temperature": 0.8, "seed": 3}).json()
    assert (again["unsteered"], again["steered"]) == (events[-1]["unsteered"], events[-1]["steered"])  # seeded


@pytest.mark.parametrize("method, url, payload, status, words", [
    ("post", "/api/inspect", {"prompt": ""}, 422, "prompt"),
    ("post", "/api/inspect", {"prompt": "x" * 5000}, 422, "prompt"),
    ("post", "/api/inspect", {"prompt": "word " * 400}, 400, "limit is 256"),
    ("post", "/api/steer", {"prompt": "hi", "interventions": [{"feature": N, "value": 1}]}, 422, f"0..{N - 1}"),
    ("post", "/api/steer", {"prompt": "hi", "interventions": [{"feature": -1, "value": 1}]}, 422, "feature"),
    ("post", "/api/steer", {"prompt": "hi", "interventions": []}, 422, "interventions"),
    ("post", "/api/steer", {"prompt": "hi", "interventions": [{"feature": 1, "value": 1, "mode": "zap"}]}, 422, "mode"),
    ("post", "/api/steer", {"prompt": "hi", "interventions": [{"feature": 1, "value": 1e9}]}, 422, "value"),
    ("post", "/api/steer", {"prompt": "hi", "interventions": [{"feature": 1, "value": 1, "mode": "multiply", "unit": "max"}]}, 400, "no unit"),
    ("post", "/api/steer", {"prompt": "hi", "max_new_tokens": 10_000, "interventions": [{"feature": 1, "value": 1}]}, 422, "max_new_tokens"),
    ("post", "/api/steer/stream", {"prompt": "hi", "interventions": [{"feature": 999, "value": 1}]}, 422, "does not exist"),
    ("get", "/api/features/48", None, 404, "does not exist"),
    ("get", "/api/features/-3", None, 422, "feature_id"),
    ("get", "/api/features/abc", None, 422, "feature_id"),
    ("get", "/api/features?limit=5000", None, 422, "limit"),
    ("get", "/api/features?sort=evil", None, 422, "sort"),
    ("get", "/api/search?q=", None, 422, "q"),
    ("get", "/api/search?q=%20%20", None, 422, "blank"),
    ("get", "/plots/..%2F..%2Fetc%2Fpasswd.png", None, 404, ""),
    ("get", "/plots/secret.png", None, 404, "no plot"),
])
def test_validation(client, method, url, payload, status, words):
    r = client.post(url, json=payload) if method == "post" else client.get(url)
    assert r.status_code == status, r.text
    assert words in r.text


def test_page_errors_are_pages(client):
    r = client.get("/features/4000")
    assert r.status_code == 404 and "<html" in r.text and "does not exist" in r.text
    r = client.get("/features?min_density=abc")
    assert r.status_code == 422 and "<html" in r.text and "min_density" in r.text
    assert client.get("/static/../app.py").status_code == 404


def test_browse_only_mode(browse_only):
    assert browse_only.get("/features/2").status_code == 200
    r = browse_only.post("/api/inspect", json={"prompt": "hello"})
    assert r.status_code == 503 and "--no-model" in r.json()["detail"]
    assert "--no-model" in browse_only.get("/inspect").text


def test_model_requests_queue(client):
    """Concurrent inspections and generations never run two forwards at once (as many
    as the queue admits: one running, max_queued waiting)."""
    model = client.app.state.run.lm.model
    active, peak, lock = [0], [0], threading.Lock()

    forward = model.forward

    def counted(*args, **kwargs):  # hooks miss forwards that stop early (lm.residual raises to stop)
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return forward(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    model.forward = counted
    errors = []

    def work(i):
        try:
            if i % 2:
                r = client.post("/api/inspect", json={"prompt": f"request {i} about rivers"})
            else:
                r = client.post("/api/steer", json={"prompt": "hi", "max_new_tokens": 4, "interventions": [{"feature": 1, "value": 2}]})
            assert r.status_code == 200, r.text
        except BaseException as e:  # collected: asserts in threads do not fail the test by themselves
            errors.append(e)

    try:
        n = client.app.state.run.limits.max_queued + 1
        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        del model.forward
    assert not errors and peak[0] == 1


def test_missing_database_gives_a_page(tmp_path):
    with TestClient(create_app(tmp_path / "nothing-here", model=False)) as c:
        r = c.get("/")
        assert r.status_code == 200 and 'id="db-error"' in r.text and "monosemantic features" in r.text
        r = c.get("/features/1")
        assert r.status_code == 503 and "<html" in r.text and "does not exist" in r.text
        assert c.get("/api/features").status_code == 503 and "does not exist" in c.get("/api/features").json()["detail"]


def test_old_schema_gives_a_page(web_run, tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    shutil.copy(web_run / "features.db", run / "features.db")
    with sqlite3.connect(run / "features.db") as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with TestClient(create_app(run, model=False)) as c:
        r = c.get("/features")
        assert r.status_code == 503 and "--force" in r.text and "Traceback" not in r.text


def test_cli_serve(monkeypatch, web_run, capsys):
    args = build_parser().parse_args(["serve", str(web_run), "--no-model"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.no_model
    calls = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert args.func(args) == 0 and calls[0]["host"] == "127.0.0.1"
    assert "warning" not in capsys.readouterr().err
    args = build_parser().parse_args(["serve", str(web_run), "--no-model", "--host", "0.0.0.0", "--port", "8123"])
    assert args.func(args) == 0 and calls[1] == {"host": "0.0.0.0", "port": 8123, "log_level": "warning"}
    assert "warning" in capsys.readouterr().err


def test_api_docs_are_local_and_complete(client):
    html = client.get("/docs").text
    spec = client.get("/openapi.json").json()
    for path in spec["paths"]:  # every endpoint of the schema is listed, with its body models
        assert f"<code>{path}</code>" in html
    assert 'id="model-SteerRequest"' in html and 'id="model-InterventionIn"' in html
    assert "<script src=\"http" not in html and "cdn" not in html.lower()


def test_the_score_column_says_which_scorer_and_never_mixes_two(client, web_run, tmp_path):
    assert client.get("/api/features").json()["scorer"] == "detection"
    assert re.search(r"score <span class=\"muted\">\(detection\)</span>", client.get("/features").text)
    shutil.copy(web_run / "features.db", tmp_path / "features.db")
    with FeatureDB(tmp_path / "features.db") as db:
        n_scored = db.conn.execute("SELECT count(*) FROM scores").fetchone()[0]
        for fid in range(n_scored + 1):  # a second scorer that scored more features, all at 0.25
            db.add_score(fid, "fuzzing", 0.25)
        assert db.list_scorer() == "fuzzing"
        assert {r.score for r in db.list(limit=None) if r.score is not None} == {0.25}
        assert {r.score for r in db.list(scorer="detection", limit=None) if r.score is not None} != {0.25}


def test_playground_starts_at_the_cli_default_strength(client):
    from monosemantic.steering.interventions import DEFAULT_ADD

    html = client.get("/steer?feature=3").text
    assert re.search(r'class="iv-value"[^>]*value="([^"]+)"', html).group(1) == str(DEFAULT_ADD)
    assert re.search(r'<option value="(\w+)" selected>', html).group(1) == "add"
