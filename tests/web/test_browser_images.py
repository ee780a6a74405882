"""The image inspector and a feature page's image examples in real chromium
(tests/web/chromium.py) on the tiny Idefics3 run: upload a picture through the file
input, get the heat map drawn over its patches; screenshots in test-artifacts/web/."""

from __future__ import annotations

import pytest
from chromium import browser, no_console_errors, serving, shot, wait  # noqa: F401 (fixtures)
from tiny_vlm import save_picture

from monosemantic.features.image_examples import build_image_examples
from monosemantic.models.images import image_files
from monosemantic.steering.run import open_run
from monosemantic.web import create_app


@pytest.fixture(scope="module")
def vlm_server(vlm_run):
    run = open_run(vlm_run, dtype="float32")
    build_image_examples(vlm_run, run.lm, run.sae, run.layer, image_files(vlm_run.parent / "pictures"), top_k=3,
                         progress=False)
    with serving(create_app(vlm_run, lm=run.lm)) as url:
        yield url


def _cells(driver, view: int):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f"#image-views .heat-view:nth-child({view}) .heat-cell")


def test_upload_draws_a_heat_map_over_the_patches(browser, vlm_server, tmp_path):
    from selenium.webdriver.common.by import By

    path = save_picture(tmp_path / "upload.png", width=64, height=48, seed=5, smooth=True)
    browser.get(vlm_server + "/image")
    browser.find_element(By.ID, "image-file").send_keys(str(path))
    browser.find_element(By.ID, "image-prompt").send_keys("a bridge")
    browser.find_element(By.ID, "image-run").click()
    wait(browser, lambda d: len(_cells(d, 1)) == 16 and len(_cells(d, 2)) == 4)
    assert "64 × 48 pixels, 20 image tokens" in browser.find_element(By.ID, "image-status").text
    cells = _cells(browser, 1) + _cells(browser, 2)
    acts = [float(c.get_attribute("data-act")) for c in cells]
    colours = [c.value_of_css_property("background-color").replace(" ", "") for c in cells]
    alphas = [float(c.rsplit(",", 1)[1].rstrip(")")) if c.startswith("rgba") else 1.0 for c in colours]
    assert len(set(alphas)) > 2                                         # the colour follows the activation
    for act, alpha in zip(acts, alphas):                                # opaque in proportion, the peak at 0.75
        assert alpha == pytest.approx(0.75 * max(act, 0) / max(acts), abs=0.003)
    image = browser.find_element(By.CSS_SELECTOR, "#image-views .heat-image")
    assert browser.execute_script("return arguments[0].naturalWidth", image) > 0
    grid = browser.find_element(By.CSS_SELECTOR, "#image-views .heat-grid")
    assert abs(grid.size["width"] - image.size["width"]) <= 2 and abs(grid.size["height"] - image.size["height"]) <= 2
    top = browser.find_elements(By.CSS_SELECTOR, "#image-top li")
    assert len(top) >= 3 and "tiles row" in top[0].text or "global row" in top[0].text
    shot(browser, "image_inspector")
    # another feature from the list: the map is redrawn for it
    second = browser.find_elements(By.CSS_SELECTOR, "#image-top .show-feature")[1]
    fid = second.get_attribute("data-feature")
    second.click()
    wait(browser, lambda d: d.find_element(By.ID, "image-selected").text.startswith(f"feature #{fid}"))
    no_console_errors(browser)


def test_a_bad_upload_says_why(browser, vlm_server, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "notes.png"
    path.write_text("this is text, not a picture")
    browser.get(vlm_server + "/image")
    browser.find_element(By.ID, "image-file").send_keys(str(path))
    browser.find_element(By.ID, "image-run").click()
    wait(browser, lambda d: "not an image" in d.find_element(By.ID, "image-status").text)
    assert not _cells(browser, 1)
    logs = browser.get_log("browser")   # the refused upload's 400 is expected there (and drained)
    assert all("400 (Bad Request)" in e["message"] for e in logs if e["level"] == "SEVERE")


def test_feature_page_shows_image_examples_with_the_peak_patch(browser, vlm_server):
    from selenium.webdriver.common.by import By

    browser.get(vlm_server + "/features/7")
    wait(browser, lambda d: d.find_element(By.ID, "image-examples").is_displayed())
    figures = browser.find_elements(By.CSS_SELECTOR, "#image-examples .heat-view")
    assert 1 <= len(figures) <= 3
    assert len(figures[0].find_elements(By.CSS_SELECTOR, ".heat-cell")) == 16
    assert len(figures[0].find_elements(By.CSS_SELECTOR, ".heat-cell.peak")) == 1
    assert figures[0].find_element(By.CSS_SELECTOR, "figcaption").text.startswith("picture-")
    browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(By.ID, "image-examples"))
    shot(browser, "feature_image_examples")
    no_console_errors(browser)
