"""The pages in a real browser: Debian's chromium driven by Selenium against uvicorn on
a free loopback port, serving the small run built in conftest.py. Screenshots go to
$PYTEST_ARTIFACTS or test-artifacts/web/ (gitignored). Without chromium, its driver or
selenium the tests are skipped and say which is missing."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from monosemantic.web import create_app

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium") if p and os.path.exists(p)), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and os.path.exists(p)), None)
ARTIFACTS = Path(os.environ.get("PYTEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "web"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(web_run, tiny_llama):
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(create_app(web_run, lm=tiny_llama), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromium-driver (chromedriver)", DRIVER)) if path is None]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium (pip install selenium)")
    if missing:
        pytest.skip(f"browser tests skipped: {', '.join(missing)} not installed (apt-get install chromium chromium-driver; "
                    f"scripts/test.sh installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _shot(driver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def _wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _post(url: str, body: dict) -> dict:
    import json
    import urllib.request

    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _no_console_errors(driver):
    try:
        logs = driver.get_log("browser")
    except Exception:  # not every driver exposes the log
        return
    assert not [entry for entry in logs if entry["level"] == "SEVERE"], logs


def test_every_page_loads(browser, server):
    from selenium.webdriver.common.by import By

    for path, marker, name in [("/", "eval-table", "overview"), ("/features", "feature-table", "feature_list"),
                               ("/search?q=rivers&by=explanation", "explanation-results", "search"),
                               ("/inspect", "inspect-form", "inspector_empty"), ("/steer", "steer-form", "steering_empty"),
                               ("/docs", "api-endpoints", "api_docs")]:
        browser.get(server + path)
        assert browser.find_element(By.ID, marker).is_displayed()
        _shot(browser, name)
        _no_console_errors(browser)
    browser.get(server + "/")
    for img in browser.find_elements(By.CSS_SELECTOR, "img.plot"):  # the plots really decoded
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 100


def test_follow_a_feature_from_the_list(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/features?sort=max_act")
    link = browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")[0]
    fid = link.text.lstrip("#")
    link.click()
    _wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"Feature #{fid}")
    tokens = browser.find_elements(By.CSS_SELECTOR, "#top-examples .tok")
    assert tokens and tokens[0].get_attribute("title").startswith("activation ")
    colours = {t.value_of_css_property("background-color") for t in tokens}
    assert len(colours) > 1  # highlighting varies with the activation
    _shot(browser, "feature_page")
    browser.find_element(By.ID, "steer-button").click()
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".iv-feature").get_attribute("value") == fid)


def test_prompt_inspector(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/inspect")
    box = browser.find_element(By.ID, "inspect-prompt")
    box.clear()
    box.send_keys("The river runs down from the mountains to the sea.")
    browser.find_element(By.ID, "inspect-run").click()
    _wait(browser, lambda d: "tokens in" in d.find_element(By.ID, "inspect-status").text)
    tokens = browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")
    assert len(tokens) >= 10
    tokens[2].click()
    assert "selected" in tokens[2].get_attribute("class")
    assert "“" in browser.find_element(By.ID, "token-features-title").text
    features = browser.find_elements(By.CSS_SELECTOR, "#token-features a.feature-link")
    assert features
    _shot(browser, "inspector")
    fid = features[0].text.lstrip("#")
    features[0].click()
    _wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"Feature #{fid}")


def test_steering_request(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/steer?feature=2")
    browser.find_element(By.CSS_SELECTOR, ".iv-mode option[value='add']").click()
    value = browser.find_element(By.CSS_SELECTOR, ".iv-value")
    value.clear()
    value.send_keys("40")
    tokens = browser.find_element(By.ID, "steer-tokens")
    tokens.clear()
    tokens.send_keys("12")
    browser.find_element(By.ID, "steer-run").click()
    _wait(browser, lambda d: d.find_element(By.ID, "steer-form").get_attribute("data-done") == "1", timeout=60)
    unsteered = browser.find_element(By.ID, "out-unsteered").text
    steered = browser.find_element(By.ID, "out-steered").text
    assert unsteered and steered and unsteered != steered
    assert browser.find_element(By.ID, "steer-status").text == "done"
    _shot(browser, "steering")
    # an out-of-range feature gives the API's message, not a silent failure
    fid = browser.find_element(By.CSS_SELECTOR, ".iv-feature")
    fid.clear()
    fid.send_keys("4000")
    browser.find_element(By.ID, "steer-run").click()
    _wait(browser, lambda d: "does not exist" in d.find_element(By.ID, "steer-status").text)


# --- browsing (issue 13, item 7) ---------------------------------------------------------
def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def test_inspector_selects_a_feature_and_keeps_it_in_the_url(browser, server):
    from urllib.parse import parse_qs, quote, urlparse

    from selenium.webdriver.common.by import By

    prompt = "The river runs down from the mountains to the sea."
    browser.get(server + "/inspect?prompt=" + quote(prompt))  # the URL alone runs the prompt
    _wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    show = browser.find_elements(By.CSS_SELECTOR, "#prompt-features button.show-feature")
    fid = show[0].get_attribute("data-feature")
    show[0].click()
    _wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "2")
    banner = browser.find_element(By.ID, "selected-feature")
    assert banner.is_displayed() and f"#{fid}" in banner.text and "max on this prompt" in banner.text
    spans = browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")
    assert all(s.get_attribute("title").startswith(f"feature #{fid}: ") for s in spans)
    acts = [float(s.get_attribute("data-act")) for s in spans]
    assert max(acts) > 0 and len(set(acts)) > 1  # coloured by this feature's activation, token by token
    api = _post(server + "/api/inspect", {"prompt": prompt, "feature": int(fid)})
    assert acts == pytest.approx([round(a, 4) for a in api["feature"]["acts"]], abs=1e-4)  # (an ASCII prompt: one span per token)
    colours = {s.value_of_css_property("background-color") for s in spans}
    assert len(colours) > 1
    query = parse_qs(urlparse(browser.current_url).query)
    assert query == {"prompt": [prompt], "feature": [fid]}
    _shot(browser, "inspector_feature_selected")
    browser.get(browser.current_url)  # the link reopens the same view
    _wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    assert f"#{fid}" in browser.find_element(By.ID, "selected-feature").text
    assert [float(s.get_attribute("data-act")) for s in browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")] == acts


def test_non_latin_text_in_the_browser(browser, server, web_run):
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    from monosemantic.features import FeatureDB

    prompt = "Привет, мир! 日本語のテキスト. Tiếng Việt ¶ 3"
    browser.get(server + "/inspect?prompt=" + quote(prompt))
    _wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    spans = browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")
    assert "".join(s.get_attribute("textContent") for s in spans) == prompt  # whole characters, in order, no "�"
    assert {"П", "日", "ệ", "¶"} & {s.get_attribute("textContent").strip()[:1] for s in spans}
    _shot(browser, "inspector_non_latin")
    with FeatureDB(web_run) as db:  # a feature whose top examples hold the multilingual contexts
        fid = next(f for f in range(db.meta["n_features"]) if sum(e.context_id < 4 for e in db.get(f).top) >= 3)
    browser.get(server + f"/features/{fid}")
    text = browser.find_element(By.ID, "top-examples").text
    assert "\ufffd" not in text and any(w in text for w in ("Привет", "日本語", "Việt", "¶ 3"))
    _shot(browser, "feature_non_latin")


def test_concept_search_in_the_ui(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server + "/concepts")
    Select(browser.find_element(By.ID, "concept-set")).select_by_value("paris")
    browser.find_element(By.ID, "concept-run").click()
    _wait(browser, lambda d: d.find_element(By.ID, "concept-form").get_attribute("data-done") == "1", timeout=60)
    rows = browser.find_elements(By.CSS_SELECTOR, "#concept-results tbody tr")
    assert len(rows) >= 3 and "concept paris" in browser.find_element(By.ID, "concept-status").text
    assert browser.current_url.endswith("/concepts?concept=paris")
    _shot(browser, "concepts")
    first = rows[0].find_element(By.CSS_SELECTOR, "a.feature-link").text.lstrip("#")
    browser.get(browser.current_url)  # the URL runs it again
    _wait(browser, lambda d: d.find_element(By.ID, "concept-form").get_attribute("data-done") == "1", timeout=60)
    assert browser.find_elements(By.CSS_SELECTOR, "#concept-results a.feature-link")[0].text.lstrip("#") == first
    inspect = browser.find_elements(By.CSS_SELECTOR, "#concept-results a.inspect-link")[0]
    inspect.click()  # the feature on one of the concept's own texts
    _wait(browser, lambda d: d.find_element(By.ID, "inspect-form").get_attribute("data-done") == "1")
    assert f"#{first}" in browser.find_element(By.ID, "selected-feature").text
    browser.back()
    _wait(browser, lambda d: d.find_element(By.ID, "concept-form").get_attribute("data-done") == "1", timeout=60)
    # own texts instead of a shipped set
    Select(browser.find_element(By.ID, "concept-set")).select_by_value("")
    browser.find_element(By.ID, "concept-positive").send_keys("The dog barked.\nA puppy played.")
    browser.find_element(By.ID, "concept-negative").send_keys("The vote passed.\nRain fell.")
    browser.find_element(By.ID, "concept-run").click()
    _wait(browser, lambda d: "your texts" in d.find_element(By.ID, "concept-status").text, timeout=60)


def test_search_beyond_one_token_and_empty_reasons(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/search?q=Paris")
    notes = _text(browser, ".search-note")
    assert "never occurred" in notes and "' Paris'" in notes and "No feature explanation contains 'Paris'" in notes
    _shot(browser, "search_empty_explained")
    browser.get(server + "/search?q=Debian&by=tokens")
    assert "'Debian' is 2 tokens ('Deb' + 'ian')" in _text(browser, ".search-note")
    browser.get(server + "/search")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("rivers")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    _wait(browser, lambda d: "q=rivers" in d.current_url)  # the query lives in the URL
    assert browser.find_elements(By.CSS_SELECTOR, "#explanation-results a.feature-link")
    _shot(browser, "search_explanations")


def test_neurons_random_sample_overview_and_histogram(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    table = browser.find_element(By.ID, "eval-table").text
    assert "dead features 5 %" in table and "dead_fraction" not in browser.page_source
    _shot(browser, "overview_readable")
    browser.find_element(By.ID, "nav-neurons").click()
    _wait(browser, lambda d: d.find_element(By.ID, "list-title").text == "Neurons")
    link = browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")[0]
    nid = link.text.lstrip("#")
    link.click()
    _wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"Neuron #{nid}")
    _shot(browser, "neuron_page")
    browser.get(server + "/features")
    browser.find_element(By.ID, "random-sample").click()
    _wait(browser, lambda d: "random sample" in d.find_element(By.ID, "list-title").text)
    first = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")]
    assert first != sorted(first, key=lambda t: int(t[1:])) and "seed=" in browser.current_url
    _shot(browser, "random_sample")
    browser.get(browser.current_url)
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")] == first
    browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")[0].click()
    _wait(browser, lambda d: d.find_element(By.ID, "feature-title").text.startswith("Feature #"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#histogram rect")
    axis = browser.find_element(By.ID, "hist-axis").text
    assert 0 < len(bars) < 40 and "10^" not in axis  # fitted to the feature, labelled in activations
    _shot(browser, "feature_histogram")


def test_running_server_shows_a_rebuilt_database(browser, web_run, tmp_path):
    import os
    import sqlite3
    import uvicorn

    from selenium.webdriver.common.by import By

    run = tmp_path / "run"
    shutil.copytree(web_run, run)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(run, model=False), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not srv.started:
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        browser.get(f"http://127.0.0.1:{port}/features/1")
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
        _shot(browser, "rebuilt_database")
    finally:
        srv.should_exit = True
        thread.join(10)
