"""Browsing through the ASGI client: search beyond one exact token (word forms, split
words, a reason for every empty list), concept search, a feature's activation over a
prompt, neurons, the random sample, fitted histograms, and a rebuilt features.db."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from monosemantic.features import FeatureDB
from monosemantic.steering import concepts as C
from monosemantic.web import create_app


@pytest.fixture(scope="module")
def spaced_word(web_run):
    """A streamed token " word" (leading space, letters only): its id and the bare word."""
    with FeatureDB(web_run) as db:
        ids = [r[0] for r in db.conn.execute("SELECT DISTINCT token_id FROM token_index WHERE kind = 'feature'")]
        for tok, text in zip(ids, db.decode(ids)):
            if text.startswith(" ") and text[1:].isalpha() and len(text) > 3:
                return tok, text[1:]
    pytest.skip("no spaced word among the streamed tokens")


def test_search_finds_a_word_without_its_space(client, web_run, spaced_word, tiny_llama):
    tok, word = spaced_word
    with FeatureDB(web_run) as db:
        expected = {f for f, _ in db.token_index([tok])[tok]}
    for query in (word, " " + word, word.upper() if False else word):
        r = client.get("/api/search", params={"q": query, "by": "tokens", "limit": 200}).json()
        assert expected <= {h["feature_id"] for h in r["items"]}, query
    # without the model loaded the run's tokenizer is loaded alone
    with TestClient(create_app(web_run, model=False)) as browse:
        r = browse.get("/api/search", params={"q": word, "by": "tokens", "limit": 200}).json()
        assert expected <= {h["feature_id"] for h in r["items"]}


def test_search_explains_empty_results(client, web_run, tiny_llama):
    word = " Paris"
    ids = tiny_llama.tokenizer(word, add_special_tokens=False)["input_ids"]
    with FeatureDB(web_run) as db:
        assert not db.token_index(ids)  # random tokens 100..2000 and the multilingual texts hold no " Paris"
    r = client.get("/api/search", params={"q": "Paris", "by": "all"}).json()
    assert r["items"] == [] and r["explanation_items"] == []
    notes = " ".join(r["notes"])
    assert "never occurred" in notes and "' Paris'" in notes and "No feature explanation contains 'Paris'" in notes
    page = client.get("/search", params={"q": "Paris"}).text
    assert "never occurred" in page and "No features found" not in page


def test_search_finds_features_promoting_a_word_never_streamed(client, web_run, tiny_llama):
    from monosemantic.steering.concepts import rank_logit_effect

    state = client.app.state.run
    state.ensure_model()  # with the model: every feature ranked by its logit effect on the word's tokens
    firsts = [tiny_llama.tokenizer(f, add_special_tokens=False)["input_ids"][0] for f in ("Paris", " Paris")]
    r = client.get("/api/search", params={"q": "Paris", "by": "tokens", "limit": 5}).json()
    assert r["items"] == [] and "z-score" in r["logit_how"]
    assert [i["id"] for i in r["logit_items"]] == [f.feature for f in rank_logit_effect(tiny_llama, state.sae, firsts, top=5)]
    with FeatureDB(web_run) as db:  # without it: the stored most promoted tokens
        tok, fid = next((int(t.token_id), f) for f in range(48) for t in db.get(f).promoted[:1] if t.token.strip().isalpha())
        word = db.decode([tok])[0]
    with TestClient(create_app(web_run, model=False)) as browse:
        r = browse.get("/api/search", params={"q": word, "by": "tokens", "limit": 200}).json()
    assert fid in [i["id"] for i in r["logit_items"]] and "most promoted" in r["logit_how"]


def test_search_splits_words_into_pieces(client, tiny_llama):
    word = "Debian"
    pieces = tiny_llama.tokenizer(word, add_special_tokens=False)["input_ids"]
    assert len(pieces) == 2
    r = client.get("/api/search", params={"q": word, "by": "tokens"}).json()
    assert any("'Debian' is 2 tokens ('Deb' + 'ian')" in n and "mean activation over the pieces" in n for n in r["notes"]), r["notes"]


def test_search_by_explanation_and_labels(client):
    r = client.get("/api/search", params={"q": "rivers", "by": "all"}).json()
    assert r["explanation_items"] and all("rivers" in i["explanation"] for i in r["explanation_items"])
    assert all(i["explanation"] is None or "explanation number" in i["explanation"] for i in r["items"])


def test_inspector_returns_a_selected_features_activation(client, tiny_llama):
    prompt = "The river flows into the sea near the mountains."
    base = client.post("/api/inspect", json={"prompt": prompt}).json()
    fid = base["top"][0]["id"]
    data = client.post("/api/inspect", json={"prompt": prompt, "feature": fid}).json()
    acts = data["feature"]["acts"]
    assert len(acts) == len(data["tokens"]) and data["feature"]["id"] == fid
    assert max(acts) == pytest.approx(base["top"][0]["activation"], rel=1e-5)
    assert acts.index(max(acts)) + 1 == base["top"][0]["position"]  # positions count the BOS-like token
    for t, a in zip(data["tokens"], acts):  # the same numbers as the per-token lists wherever it is listed
        listed = {f["id"]: f["activation"] for f in t["features"]}
        if fid in listed:
            assert listed[fid] == pytest.approx(a, rel=1e-5)
    assert client.post("/api/inspect", json={"prompt": prompt, "feature": 10_000}).status_code == 422


def test_concept_search_matches_the_library(client, tiny_llama):
    state = client.app.state.run
    r = client.post("/api/concept", json={"concept": "paris", "top": 5}).json()
    expected = C.find_concept_features(tiny_llama, state.sae, state.layer, C.load_concept("paris").half("train"), top=5)
    assert [i["id"] for i in r["items"]] == [e.feature for e in expected] and r["how"].startswith("concept paris")
    pos, neg = ["The dog barked at the cat.", "A puppy chased the ball."], ["The budget was approved.", "Rain fell all day."]
    r = client.post("/api/concept", json={"positive": pos, "negative": neg, "top": 5}).json()
    assert [i["id"] for i in r["items"]] == [e.feature for e in C.rank_contrastive(tiny_llama, state.sae, state.layer, pos, neg, top=5)]
    for body in ({"concept": "../../etc/passwd"}, {"concept": "nope"}, {"positive": pos}):
        bad = client.post("/api/concept", json=body)
        assert bad.status_code == 400 and ("unknown concept" in bad.json()["detail"] or "texts without it" in bad.json()["detail"])
    assert {c["name"] for c in client.get("/api/concepts").json()} == set(C.concept_names())
    assert 'id="concept-form"' in client.get("/concepts?concept=paris").text


def test_neurons_are_browsable(client, web_run):
    with FeatureDB(web_run) as db:
        n = db.meta["n_neurons"]
        expected = [s.id for s in db.list(kind="neuron", sort="max_act", limit=5)]
    assert n > 0
    r = client.get("/api/features", params={"kind": "neuron", "sort": "max_act", "limit": 5}).json()
    assert [i["id"] for i in r["items"]] == expected and all(i["kind"] == "neuron" for i in r["items"])
    html = client.get("/features", params={"kind": "neuron"}).text
    assert 'id="nav-neurons"' in html and f'href="/features/{expected[0]}?kind=neuron"' in html
    page = client.get(f"/features/{expected[0]}", params={"kind": "neuron"}).text
    assert f"Neuron #{expected[0]}" in page and 'id="steer-button"' not in page
    assert client.get(f"/features/{n}", params={"kind": "neuron"}).status_code == 404
    assert client.get("/api/features/0", params={"kind": "neuron"}).json()["kind"] == "neuron"


def test_random_sample_is_seeded_and_pages(client, web_run):
    def page(seed, offset=0, limit=10):
        return [i["id"] for i in client.get("/api/features", params={"sort": "random", "seed": seed, "limit": limit,
                                                                      "offset": offset}).json()["items"]]
    a, b = page(1), page(2)
    assert a == page(1) and a != b and a != sorted(a)
    assert sorted(page(1, 0, 24) + page(1, 24, 24)) == list(range(48))
    html = client.get("/features").text
    link = re.search(r'id="random-sample" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "sort=random" in link and "seed=" in link
    assert "a random sample" in client.get(link).text


def test_histogram_axis_fits_the_feature(client, web_run):
    with FeatureDB(web_run) as db:
        fid = db.list(sort="count", live_only=True, limit=1)[0].id
        f = db.get(fid)
    html = client.get(f"/features/{fid}").text
    bars = html.count("<rect ")
    assert 0 < bars < len(f.histogram)  # not the fixed 10^-4..10^5 axis
    lo, hi = (float(x) for x in re.search(r'id="hist-axis"><span>([^<]+)</span>.*?<span>([^<]+)</span></div>', html).groups())
    assert lo <= f.max_act <= hi and hi / lo <= 1.01 * 10 ** (bars * (f.hist_log10_edges[1] - f.hist_log10_edges[0]))  # labels: 3 digits


def test_running_server_notices_a_rebuilt_database(web_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(web_run, run)
    with TestClient(create_app(run, model=False)) as c:
        assert "freshly rebuilt label" not in c.get("/features/1").text
        # what the builder does: write a new file, then rename it over features.db
        new = run / "features.db.partial"
        shutil.copy(run / "features.db", new)
        with sqlite3.connect(new) as conn:
            conn.execute("INSERT INTO explanations (feature_id, kind, explainer, text) VALUES (1, 'feature', 'x', 'freshly rebuilt label')")
            conn.execute("UPDATE meta SET value = '12345' WHERE key = 'n_tokens'")
        os.replace(new, run / "features.db")
        time.sleep(1.1)  # the file is checked at most once a second
        assert "freshly rebuilt label" in c.get("/features/1").text
        assert c.get("/api/run").json()["features_db"]["n_tokens"] == 12345
