"""Non-Latin text through the server: example windows, the JSON API and the prompt
inspector show whole characters (decoded by bytes), never "�"."""

from __future__ import annotations

import html as html_lib
import re

from monosemantic.features import FeatureDB

from feature_helpers import MULTILINGUAL  # tests/features, on the path via conftest.py

EDGE_BYTES = re.compile(r"^(‹[0-9a-f]{2}›)+|(‹[0-9a-f]{2}›)+$")


def _multilingual_examples(web_run):
    with FeatureDB(web_run) as db:
        n = db.meta["n_features"]
        return [(fid, e) for fid in range(n) for e in db.get(fid).top if e.context_id < len(MULTILINGUAL)]


def test_examples_json_and_page_show_whole_characters(client, web_run):
    examples = _multilingual_examples(web_run)
    assert len(examples) > 10
    scripts = {"cyrillic": "Привет", "cjk": "日本語", "vietnamese": "Việt", "pilcrow": "¶"}
    seen = set()
    for fid, e in examples:
        text = "".join(e.tokens)
        assert "\ufffd" not in text
        assert "‹" not in EDGE_BYTES.sub("", text)  # undecodable bytes only where a window cuts a character
        seen |= {k for k, v in scripts.items() if v in MULTILINGUAL[e.context_id] and any(c in text for c in v)}
    assert seen == set(scripts)
    fid, e = next((fid, e) for fid, e in examples if e.context_id == 1)
    data = client.get(f"/api/features/{fid}").json()
    assert all("\ufffd" not in "".join(ex["tokens"]) for ex in data["top"])
    page = html_lib.unescape(client.get(f"/features/{fid}").text)
    assert "\ufffd" not in page and any(ch in page for ch in "日本語中文東京北京")


def test_inspector_joins_split_characters(client, tiny_llama):
    prompt = MULTILINGUAL[0] + " " + MULTILINGUAL[1]
    data = client.post("/api/inspect", json={"prompt": prompt}).json()
    tokens = [t["token"] for t in data["tokens"]]
    assert "".join(tokens) == prompt and "" in tokens  # "" = continues the previous token's character
