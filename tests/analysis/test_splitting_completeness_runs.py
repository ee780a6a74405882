"""`analyze splitting` and `analyze completeness` on a real (tiny) family: text with
known concept words, harvested by the tiny random Llama (tests/conftest.py), two relu
members trained by `monosemantic family`, then the commands, their outputs, the resume
from cached codes, the web pages and the one-line refusals."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
from chromium import browser, serving, shot, wait  # noqa: E402, F401 (browser: a fixture)

from monosemantic.analysis import shared_rows
from monosemantic.cli.main import main
from monosemantic.models.tokenizer import load_tokenizer

WORDS = ["import json", "France", "Germany", "January", "iron", "copper", "seven", "Monday", "the cat sat on the mat",
         "and then", "a dog ran", "New Zealand"]


@pytest.fixture(scope="module")
def family(tmp_path_factory, tiny_model_dirs):
    root = tmp_path_factory.mktemp("split-family")
    rng = random.Random(0)
    text = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) + "." for _ in range(300))
    (root / "text.txt").write_text(text)
    assert main(["--quiet", "harvest", str(root / "store"), "--model", str(tiny_model_dirs["llama"]), "--inputs",
                 str(root / "text.txt"), "--tokens", "3000", "--ctx-len", "32", "--layer", "2"]) == 0
    assert main(["--quiet", "family", str(root / "fam"), "--activations", str(root / "store"), "--latents", "16,48",
                 "--train-tokens", "8192", "--batch-size", "256", "--eval-tokens", "300", "--eval-contexts", "2"]) == 0
    assert main(["--quiet", "analyze", "splitting", str(root / "fam"), "--rows", "2000"]) == 0
    assert main(["--quiet", "analyze", "completeness", str(root / "fam"), "--rows", "2000"]) == 0
    return root


def test_splitting_writes_trees_examples_and_the_figure(family):
    out = family / "fam" / "analysis" / "splitting"
    summary = json.loads((out / "splitting.json").read_text())
    trees = json.loads((out / "trees.json").read_text())
    assert trees["members"] == ["n16", "n48"] and len(trees["trees"]) == 16
    pair = summary["pairs"][0]
    counts = [len(t.get("children", [])) for t in trees["trees"]]
    assert sum(pair["children_distribution"]) == pair["alive_parents"]
    assert sum(counts) == pair["matched_children"] and 0 < pair["matched_children"] <= 48
    assert summary["split_fraction"] == pytest.approx(np.mean([c >= 2 for c in counts]), abs=1e-4)
    for t in trees["trees"]:
        for c in t.get("children", []):
            assert c["cosine"] >= 0.5 and c["coactivation"] >= 0.5
    examples = json.loads((out / "examples.json").read_text())
    shown = [e for ex in examples["n16"].values() for e in ex]
    assert shown and all(isinstance(e[3], float) and e[1] for e in shown)
    assert any(w.split()[0] in "".join(e[:3]) for e in shown for w in WORDS)         # real text, decoded
    assert (out / "children_counts.png").read_bytes()[:4] == b"\x89PNG"


def test_completeness_finds_the_concepts_in_the_text(family):
    out = family / "fam" / "analysis" / "completeness"
    summary = json.loads((out / "completeness.json").read_text())
    concepts = json.loads((out / "concepts.json").read_text())
    listed = {c["concept"]: c for c in concepts["catalogue"]}
    # independent count: the regex on the decoded contexts from position 2 (the store has no rows before it);
    # a two-token name starting at position 1 still has a row at 2, so it is also counted from position 1
    from monosemantic.run import Run

    tok = load_tokenizer(Run(family / "store").model_spec)
    contexts = np.load(family / "store" / "tokens" / "contexts.npy")

    def count(form, start):
        pattern = rf"(?<![A-Za-z0-9_]){form}(?![A-Za-z0-9_])"
        return sum(len(re.findall(pattern, tok.decode(ctx[start:].tolist()))) for ctx in contexts)

    for key, form in (("country/France", "France"), ("element/iron", "iron"), ("month/January", "January")):
        assert listed[key]["mentions"] == count(form, 2) > 5, key
    assert count("New Zealand", 2) <= listed["country/New Zealand"]["mentions"] <= count("New Zealand", 1)
    assert listed["country/New Zealand"]["mentions"] > 5
    assert listed["python-module/json"]["mentions"] == 0        # not Python source: module names do not count
    assert summary["concepts_judged"] == len({p["concept"] for p in concepts["points"]}) >= 8
    assert {m["name"] for m in summary["members"]} == {"n16", "n48"}
    for p in concepts["points"]:
        assert p["present"] == (p["f1"] >= summary["min_f1"]) and 0 < p["frequency"] < 1
    assert (out / "completeness.png").read_bytes()[:4] == b"\x89PNG"


def test_a_rerun_reuses_the_cached_codes(family, monkeypatch):
    def no_encoding(*a, **k):
        raise AssertionError("encoded again")

    monkeypatch.setattr(shared_rows, "sparse_codes", no_encoding)
    assert main(["--quiet", "analyze", "splitting", str(family / "fam"), "--rows", "2000",
                 "--out", str(family / "again")]) == 0
    assert json.loads((family / "again" / "splitting.json").read_text())["pairs"] == \
        json.loads((family / "fam" / "analysis" / "splitting" / "splitting.json").read_text())["pairs"]


def test_the_web_ui_shows_the_trees(family):
    from monosemantic.web import create_app

    client = TestClient(create_app(family / "fam" / "n48", model=False))
    page = client.get("/splitting?min_children=0")
    assert page.status_code == 200 and 'id="nav-splitting"' in page.text
    ids = re.findall(r'href="/splitting/(\d+)"', page.text)
    assert sorted(map(int, ids)) == list(range(16))
    trees = json.loads((family / "fam" / "analysis" / "splitting" / "trees.json").read_text())["trees"]
    big = max(trees, key=lambda t: len(t.get("children", [])))
    tree = client.get(f"/splitting/{big['id']}")
    assert tree.status_code == 200
    nodes = re.findall(r'data-member="(n\d+)" data-id="(\d+)"', tree.text)
    assert nodes[0] == ("n16", str(big["id"])) and {("n48", str(c["id"])) for c in big["children"]} <= set(nodes)
    assert tree.text.count('class="ex"') >= 1 and 'class="node-link"' not in tree.text   # no features.db: no feature pages
    child = big["children"][0]["id"]
    (family / "fam" / "n48" / "features.db").write_bytes(b"")     # the link only needs the file to exist
    (family / "fam" / "n16" / "features.db").write_bytes(b"")
    try:
        linked = client.get(f"/splitting/{big['id']}").text
        assert f'href="/features/{child}"' in linked and f'href="/map/n16/features/{big["id"]}"' in linked
    finally:
        (family / "fam" / "n48" / "features.db").unlink()
        (family / "fam" / "n16" / "features.db").unlink()
    assert client.get("/splitting/999").status_code == 404
    assert client.get("/splitting/children_counts.png").content[:4] == b"\x89PNG"
    plain = TestClient(create_app(family / "store", model=False))
    assert plain.get("/splitting").status_code == 404 and 'id="nav-splitting"' not in plain.get("/").text


def test_an_analysis_of_no_family_says_what_to_run(family, tmp_path, capsys):
    assert main(["analyze", "splitting", str(family / "store")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "monosemantic family" in err
    np.save(tmp_path / "acts.npy", np.random.default_rng(0).normal(size=(600, 64)).astype(np.float32))
    for name in ("a", "b"):
        assert main(["--quiet", "train", str(tmp_path / name), "--activations", str(tmp_path / "acts.npy"), "--latents",
                     "16" if name == "a" else "32", "--train-tokens", "1024", "--batch-size", "128"]) == 0
    capsys.readouterr()
    for name in ("completeness", "splitting"):     # a store of bare activations: no tokens to show or find concepts in
        assert main(["analyze", name, str(tmp_path), "--rows", "200"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "monosemantic harvest" in err, err


def test_the_web_ui_shows_completeness(family):
    from monosemantic.web import create_app

    client = TestClient(create_app(family / "fam" / "n16", model=False))
    page = client.get("/completeness")
    assert page.status_code == 200 and 'id="nav-completeness"' in page.text
    points = json.loads((family / "fam" / "analysis" / "completeness" / "concepts.json").read_text())["points"]
    assert "country/France" in page.text and page.text.count("<tr>") == len({p["concept"] for p in points}) + 4
    best = [p for p in points if p["member"] == "n16" and p["feature"] >= 0][0]
    assert f'#{best["feature"]}' in page.text and 'href="/features/' not in page.text   # no features.db: no links
    assert client.get("/completeness?category=element").text.count("element/") >= 2
    assert client.get("/completeness/completeness.png").content[:4] == b"\x89PNG"


def test_split_trees_in_a_real_browser(family, browser):
    """Debian's chromium against uvicorn: the Splitting nav link, a click into a tree,
    its nodes and examples drawn, the figures loaded (a screenshot of each page)."""
    from selenium.webdriver.common.by import By

    from monosemantic.web import create_app

    driver = browser
    with serving(create_app(family / "fam" / "n48", model=False)) as url:
        driver.get(url + "/")
        driver.find_element(By.ID, "nav-splitting").click()
        wait(driver, lambda d: d.find_elements(By.ID, "tree-list"))
        img = driver.find_element(By.ID, "children-counts")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0
        shot(driver, "splitting-list")
        link = driver.find_elements(By.CSS_SELECTOR, "a.tree-link")[0]
        tree_id = link.text.lstrip("#")
        link.click()
        wait(driver, lambda d: d.find_elements(By.ID, "split-tree"))
        nodes = driver.find_elements(By.CSS_SELECTOR, "li.split-node")
        assert nodes[0].get_attribute("data-id") == tree_id and len(nodes) >= 3     # the list shows trees with ≥ 2 children
        assert {n.get_attribute("data-member") for n in nodes} == {"n16", "n48"}
        assert driver.find_elements(By.CSS_SELECTOR, "li.split-node .ex .peak")
        shot(driver, "splitting-tree")
        driver.find_element(By.ID, "nav-completeness").click()
        wait(driver, lambda d: d.find_elements(By.ID, "concept-table"))
        fig = driver.find_element(By.ID, "completeness-figure")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", fig) > 0
        shot(driver, "completeness")
