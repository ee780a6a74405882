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
