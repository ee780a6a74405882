"""Browsing in a real browser: a feature selected in the inspector (its activation over
the prompt, kept in the URL), non-Latin text, concept search, search that explains an
empty result, neurons, the random sample, the readable overview, fitted histograms,
and a features.db rebuilt while the server runs. Screenshots under test-artifacts/web/."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time

import pytest
from chromium import browser, post, server, serving, shot, wait  # noqa: F401 (fixtures)

from monosemantic.web import create_app


def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def test_inspector_selects_a_feature_and_keeps_it_in_the_url(browser, server):
    from urllib.parse import parse_qs, quote, urlparse

    from selenium.webdriver.common.by import By

    prompt = "The river runs down from the mountains to the sea."
    browser.get(server + "/inspect?prompt=" + quote(prompt))  # the URL alone runs the prompt
    wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    show = browser.find_elements(By.CSS_SELECTOR, "#prompt-features button.show-feature")
    fid = show[0].get_attribute("data-feature")
    show[0].click()
    wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "2")
    banner = browser.find_element(By.ID, "selected-feature")
    assert banner.is_displayed() and f"#{fid}" in banner.text and "max on this prompt" in banner.text
    spans = browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")
    assert all(s.get_attribute("title").startswith(f"feature #{fid}: ") for s in spans)
    acts = [float(s.get_attribute("data-act")) for s in spans]
    assert max(acts) > 0 and len(set(acts)) > 1  # coloured by this feature's activation, token by token
    api = post(server + "/api/inspect", {"prompt": prompt, "feature": int(fid)})
    assert acts == pytest.approx([round(a, 4) for a in api["feature"]["acts"]], abs=1e-4)  # (an ASCII prompt: one span per token)
    colours = {s.value_of_css_property("background-color") for s in spans}
    assert len(colours) > 1
    query = parse_qs(urlparse(browser.current_url).query)
    assert query == {"prompt": [prompt], "feature": [fid]}
    shot(browser, "inspector_feature_selected")
    browser.get(browser.current_url)  # the link reopens the same view
    wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    assert f"#{fid}" in browser.find_element(By.ID, "selected-feature").text
    assert [float(s.get_attribute("data-act")) for s in browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")] == acts


def test_non_latin_text_in_the_browser(browser, server, web_run):
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    from monosemantic.features import FeatureDB

    prompt = "Привет, мир! 日本語のテキスト. Tiếng Việt ¶ 3"
    browser.get(server + "/inspect?prompt=" + quote(prompt))
    wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    spans = browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")
    assert "".join(s.get_attribute("textContent") for s in spans) == prompt  # whole characters, in order, no "�"
    assert {"П", "日", "ệ", "¶"} & {s.get_attribute("textContent").strip()[:1] for s in spans}
    shot(browser, "inspector_non_latin")
    with FeatureDB(web_run) as db:  # a feature whose top examples hold the multilingual contexts
        fid = next(f for f in range(db.meta["n_features"]) if sum(e.context_id < 4 for e in db.get(f).top) >= 3)
    browser.get(server + f"/features/{fid}")
    text = browser.find_element(By.ID, "top-examples").text
    assert "\ufffd" not in text and any(w in text for w in ("Привет", "日本語", "Việt", "¶ 3"))
    shot(browser, "feature_non_latin")


def test_concept_search_in_the_ui(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server + "/concepts")
    Select(browser.find_element(By.ID, "concept-set")).select_by_value("paris")
    browser.find_element(By.ID, "concept-run").click()
    wait(browser, lambda d: d.find_element(By.ID, "concept-form").get_attribute("data-done") == "1", timeout=60)
    rows = browser.find_elements(By.CSS_SELECTOR, "#concept-results tbody tr")
    assert len(rows) >= 3 and "concept paris" in browser.find_element(By.ID, "concept-status").text
    assert browser.current_url.endswith("/concepts?concept=paris")
    shot(browser, "concepts")
    first = rows[0].find_element(By.CSS_SELECTOR, "a.feature-link").text.lstrip("#")
    browser.get(browser.current_url)  # the URL runs it again
    wait(browser, lambda d: d.find_element(By.ID, "concept-form").get_attribute("data-done") == "1", timeout=60)
    assert browser.find_elements(By.CSS_SELECTOR, "#concept-results a.feature-link")[0].text.lstrip("#") == first
    inspect = browser.find_elements(By.CSS_SELECTOR, "#concept-results a.inspect-link")[0]
    inspect.click()  # the feature on one of the concept's own texts
    wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    assert f"#{first}" in browser.find_element(By.ID, "selected-feature").text
    browser.back()
    wait(browser, lambda d: d.find_element(By.ID, "concept-form").get_attribute("data-done") == "1", timeout=60)
    # own texts instead of a shipped set
    Select(browser.find_element(By.ID, "concept-set")).select_by_value("")
    browser.find_element(By.ID, "concept-positive").send_keys("The dog barked.\nA puppy played.")
    browser.find_element(By.ID, "concept-negative").send_keys("The vote passed.\nRain fell.")
    browser.find_element(By.ID, "concept-run").click()
    wait(browser, lambda d: "your texts" in d.find_element(By.ID, "concept-status").text, timeout=60)


def test_search_beyond_one_token_and_empty_reasons(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/search?q=Paris")
    notes = _text(browser, ".search-note")
    assert "never occurred" in notes and "' Paris'" in notes and "No feature explanation contains 'Paris'" in notes
    shot(browser, "search_empty_explained")
    browser.get(server + "/search?q=Debian&by=tokens")
    assert "'Debian' is 2 tokens ('Deb' + 'ian')" in _text(browser, ".search-note")
    browser.get(server + "/search")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("rivers")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait(browser, lambda d: "q=rivers" in d.current_url)  # the query lives in the URL
    assert browser.find_elements(By.CSS_SELECTOR, "#explanation-results a.feature-link")
    shot(browser, "search_explanations")


def test_neurons_random_sample_overview_and_histogram(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    table = browser.find_element(By.ID, "eval-table").text
    assert "dead features 5 %" in table and "dead_fraction" not in browser.page_source
    shot(browser, "overview_readable")
    browser.find_element(By.ID, "nav-neurons").click()
    wait(browser, lambda d: d.find_element(By.ID, "list-title").text == "Neurons")
    link = browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")[0]
    nid = link.text.lstrip("#")
    link.click()
    wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"Neuron #{nid}")
    shot(browser, "neuron_page")
    browser.get(server + "/features")
    browser.find_element(By.ID, "random-sample").click()
    wait(browser, lambda d: "random sample" in d.find_element(By.ID, "list-title").text)
    first = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")]
    assert first != sorted(first, key=lambda t: int(t[1:])) and "seed=" in browser.current_url
    shot(browser, "random_sample")
    browser.get(browser.current_url)
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")] == first
    browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")[0].click()
    wait(browser, lambda d: d.find_element(By.ID, "feature-title").text.startswith("Feature #"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#histogram rect")
    axis = browser.find_element(By.ID, "hist-axis").text
    assert 0 < len(bars) < 40 and "10^" not in axis  # fitted to the feature, labelled in activations
    shot(browser, "feature_histogram")


def test_running_server_shows_a_rebuilt_database(browser, web_run, tmp_path):
    from selenium.webdriver.common.by import By

    run = tmp_path / "run"
    shutil.copytree(web_run, run)
    with serving(create_app(run, model=False)) as url:
        browser.get(url + "/features/1")
        assert "rebuilt while serving" not in browser.find_element(By.ID, "explanation").text
        new = run / "features.db.partial"  # what `monosemantic features --force` does: a new file renamed into place
        shutil.copy(run / "features.db", new)
        with sqlite3.connect(new) as conn:
            conn.execute("DELETE FROM explanations WHERE feature_id = 1")
            conn.execute("INSERT INTO explanations (feature_id, kind, explainer, text) VALUES (1, 'feature', 'x', 'rebuilt while serving')")
        os.replace(new, run / "features.db")
        time.sleep(1.2)
        browser.refresh()
        assert browser.find_element(By.ID, "explanation").text == "rebuilt while serving"
        shot(browser, "rebuilt_database")
