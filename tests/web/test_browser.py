"""The pages in a real browser: Debian's chromium driven by Selenium against uvicorn on
a free loopback port, serving the small run built in conftest.py. Screenshots go to
$PYTEST_ARTIFACTS or test-artifacts/web/ (gitignored). Without chromium, its driver or
selenium the tests are skipped and say which is missing."""

from __future__ import annotations

from chromium import browser, no_console_errors, server, shot, wait  # noqa: F401 (fixtures)


def test_every_page_loads(browser, server):
    from selenium.webdriver.common.by import By

    for path, marker, name in [("/", "eval-table", "overview"), ("/features", "feature-table", "feature_list"),
                               ("/search?q=rivers&by=explanation", "explanation-results", "search"),
                               ("/inspect", "inspect-form", "inspector_empty"), ("/steer", "steer-form", "steering_empty"),
                               ("/docs", "api-endpoints", "api_docs")]:
        browser.get(server + path)
        assert browser.find_element(By.ID, marker).is_displayed()
        shot(browser, name)
        no_console_errors(browser)
    browser.get(server + "/")
    for img in browser.find_elements(By.CSS_SELECTOR, "img.plot"):  # the plots really decoded
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 100


def test_follow_a_feature_from_the_list(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/features?sort=max_act")
    link = browser.find_elements(By.CSS_SELECTOR, "#feature-table a.feature-link")[0]
    fid = link.text.lstrip("#")
    link.click()
    wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"Feature #{fid}")
    tokens = browser.find_elements(By.CSS_SELECTOR, "#top-examples .tok")
    assert tokens and tokens[0].get_attribute("title").startswith("activation ")
    colours = {t.value_of_css_property("background-color") for t in tokens}
    assert len(colours) > 1  # highlighting varies with the activation
    shot(browser, "feature_page")
    browser.find_element(By.ID, "steer-button").click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".iv-feature").get_attribute("value") == fid)


def test_prompt_inspector(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/inspect")
    box = browser.find_element(By.ID, "inspect-prompt")
    box.clear()
    box.send_keys("The river runs down from the mountains to the sea.")
    browser.find_element(By.ID, "inspect-run").click()
    wait(browser, lambda d: "tokens in" in d.find_element(By.ID, "inspect-status").text)
    tokens = browser.find_elements(By.CSS_SELECTOR, "#inspect-tokens .tok")
    assert len(tokens) >= 10
    tokens[2].click()
    assert "selected" in tokens[2].get_attribute("class")
    assert "“" in browser.find_element(By.ID, "token-features-title").text
    features = browser.find_elements(By.CSS_SELECTOR, "#token-features a.feature-link")
    assert features
    shot(browser, "inspector")
    fid = features[0].text.lstrip("#")
    features[0].click()
    wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"Feature #{fid}")


def test_steering_request(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/steer?feature=2")
    browser.find_element(By.CSS_SELECTOR, ".iv-mode option[value='add']").click()
    browser.find_element(By.CSS_SELECTOR, ".iv-unit option[value='abs']").click()
    value = browser.find_element(By.CSS_SELECTOR, ".iv-value")
    value.clear()
    value.send_keys("40")
    tokens = browser.find_element(By.ID, "steer-tokens")
    tokens.clear()
    tokens.send_keys("12")
    browser.find_element(By.ID, "steer-run").click()
    wait(browser, lambda d: d.find_element(By.ID, "steer-form").get_attribute("data-done") == "1", timeout=60)
    unsteered = browser.find_element(By.ID, "out-unsteered").text
    steered = browser.find_element(By.ID, "out-steered").text
    assert unsteered and steered and unsteered != steered
    assert browser.find_element(By.ID, "steer-status").text == "done"
    shot(browser, "steering")
    # an out-of-range feature gives the API's message, not a silent failure
    fid = browser.find_element(By.CSS_SELECTOR, ".iv-feature")
    fid.clear()
    fid.send_keys("4000")
    browser.find_element(By.ID, "steer-run").click()
    wait(browser, lambda d: "does not exist" in d.find_element(By.ID, "steer-status").text)
