"""The multilingual page (web/multilingual.py) on a result the real pipeline wrote for
the tiny Llama: through the app, and in a real browser (chromium)."""

from __future__ import annotations

import shutil

import pytest
from chromium import browser, no_console_errors, serving, shot, wait  # noqa: F401 (fixtures)
from fastapi.testclient import TestClient
from multilingual_helpers import write_tiny_result

from monosemantic.web import create_app


@pytest.fixture(scope="module")
def ml_run(web_run, tiny_llama, tmp_path_factory):
    run = tmp_path_factory.mktemp("ml") / "run"
    shutil.copytree(web_run, run)
    return run, write_tiny_result(tiny_llama, run)


def test_page_shows_the_result(ml_run, tiny_llama):
    run, result = ml_run
    with TestClient(create_app(run, lm=tiny_llama)) as client:
        page = client.get("/multilingual").text
        assert f"{100 * result['agnostic_fraction']:.1f} %" in page
        assert f"r &gt; {result['threshold']:.3f}" in page
        shown = result["top"] + result["top_same_token"]
        assert shown and all(f'id="ml-feature-{t["feature"]}"' in page for t in shown)
        assert "川" in page and "\ufffd" not in page                      # Japanese rendered by bytes
        assert 'id="ml-by-size"' in page                                 # the family table: two SAEs
        assert client.get("/multilingual/scores.png").content[:4] == b"\x89PNG"
        assert client.get("/multilingual/nothing.png").status_code == 404
        (run / "analysis" / "multilingual" / "other.png").write_bytes(b"\x89PNG not a figure")   # only the named figures
        assert client.get("/multilingual/other.png").status_code == 404


def test_page_without_an_analysis_says_how_to_make_one(web_run, tiny_llama):
    with TestClient(create_app(web_run, lm=tiny_llama)) as client:
        r = client.get("/multilingual")
        assert r.status_code == 200 and "monosemantic multilingual" in r.text and 'id="ml-missing"' in r.text
        assert client.get("/multilingual/scores.png").status_code == 404


def test_multilingual_page_in_the_browser(browser, ml_run, tiny_llama):
    from selenium.webdriver.common.by import By

    run, result = ml_run
    with serving(create_app(run, lm=tiny_llama)) as url:
        browser.get(url + "/")
        browser.find_element(By.ID, "nav-multilingual").click()
        wait(browser, lambda d: d.find_element(By.ID, "ml-summary").is_displayed())
        assert browser.find_element(By.ID, "ml-agnostic").text.startswith(f"{100 * result['agnostic_fraction']:.1f} %")
        img = browser.find_element(By.ID, "ml-fig-scores")
        wait(browser, lambda d: d.execute_script("return arguments[0].complete", img))
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 100   # the figure decoded
        rows = browser.find_elements(By.CSS_SELECTOR, ".ml-example td.examples[lang='ja-JP']")
        assert rows and "川" in rows[0].text
        shot(browser, "multilingual")
        no_console_errors(browser)
