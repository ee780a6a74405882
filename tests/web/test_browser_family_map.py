"""The family map in a real browser: a family of two SAEs on the tiny random Llama
(features.db of each built by the real builder), `analyze geometry` run on it for
real (UMAP included), the served member's app in uvicorn, Debian's chromium
hovering, filtering, zooming and clicking points through to feature pages."""

from __future__ import annotations

import math

import pytest
import torch

from chromium import browser, no_console_errors, serving, shot, wait  # noqa: F401 (fixtures)
from conftest import LAYER, multilingual_tokens

from monosemantic.analysis.registry import run_analysis
from monosemantic.features import FeatureDB, build_feature_db
from monosemantic.sae import SAEConfig, load_sae, make_sae, save_sae
from monosemantic.web import create_app

SIZES = (24, 48)


def build_member(lm, run, n, seed):
    sae = make_sae(SAEConfig("relu", d_in=lm.d_model, n_latents=n))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_dec.copy_(torch.randn(n, lm.d_model, generator=g) / lm.d_model**0.5)
        sae.W_enc.copy_(sae.W_dec.T * 3.0)
        sae.b_enc.copy_(-0.3 * torch.rand(n, generator=g))
    save_sae(sae, run / "sae")
    build_feature_db(run, lm=lm, sae=load_sae(run / "sae"), tokens=multilingual_tokens(lm.tokenizer, 24, 32, lm.bos_id),
                     layer=LAYER, n_tokens=600, progress=False)
    with FeatureDB(run) as db:
        db.add_explanation(3, "test-explainer", f"feature three of n{n}, about rivers")


@pytest.fixture(scope="module")
def family(tiny_llama, tmp_path_factory):
    fam = tmp_path_factory.mktemp("family")
    for seed, n in enumerate(SIZES):
        build_member(tiny_llama, fam / f"n{n}", n, seed)
    summary = run_analysis("geometry", fam, clusters=5, progress=False)
    assert (fam / "analysis" / "geometry" / "umap.png").read_bytes()[:4] == b"\x89PNG"
    assert "points on the map" in summary
    return fam


@pytest.fixture(scope="module")
def map_server(family, tiny_llama):
    with serving(create_app(family / "n48", lm=tiny_llama, model=False)) as url:
        yield url


def isolated_point(points, member, gap=14.0):
    """A point of `member` with no other shown point within `gap` pixels (a click lands on it)."""
    for m, fid, x, y in points:
        if m == member and all(math.hypot(x - x2, y - y2) >= gap for m2, f2, x2, y2 in points if (m2, f2) != (m, fid)):
            return fid, x, y
    raise AssertionError(f"no isolated point of {member}")


def pointer_at(browser, canvas, x, y):
    """Actions with the pointer at (x, y) CSS pixels from the canvas's top left (Selenium offsets are from its centre)."""
    from selenium.webdriver.common.action_chains import ActionChains

    rect = canvas.rect
    return ActionChains(browser).move_to_element_with_offset(canvas, round(x - rect["width"] / 2), round(y - rect["height"] / 2))


def test_family_map_hover_filter_zoom_and_click_through(browser, map_server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    browser.get(map_server + "/")
    assert browser.find_element(By.ID, "nav-map").is_displayed()           # the run's pages link the family map
    browser.get(map_server + "/map")
    wait(browser, lambda d: d.find_element(By.ID, "family-map").get_attribute("data-ready") == "1")
    canvas = browser.find_element(By.ID, "family-map")
    painted = browser.execute_script("""
        const c = arguments[0], px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, seen = {};
        for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0) seen[[px[i], px[i + 1], px[i + 2]].join()] = 1;
        return Object.keys(seen).length;""", canvas)
    assert painted > 3                                                       # points in both members' colours, labels
    shot(browser, "family_map")
    no_console_errors(browser)

    total = browser.execute_script("return familyMap.shownCount()")
    browser.find_element(By.ID, "member-n24").click()                        # the member filter
    assert browser.execute_script("return familyMap.shownCount()") < total
    assert {p[0] for p in browser.execute_script("return familyMap.screenPoints()")} == {"n48"}
    browser.find_element(By.ID, "member-n24").click()
    assert browser.execute_script("return familyMap.shownCount()") == total

    before = browser.execute_script("return familyMap.view().scale")       # wheel zooms
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, -300).perform()
    wait(browser, lambda d: d.execute_script("return familyMap.view().scale") > before * 1.2)
    browser.find_element(By.ID, "map-reset").click()

    fid, x, y = isolated_point(browser.execute_script("return familyMap.screenPoints()"), "n24")
    pointer_at(browser, canvas, x, y).perform()
    tip = browser.find_element(By.ID, "map-tip")
    wait(browser, lambda d: tip.is_displayed() and tip.text.startswith(f"n24 #{fid}: "))
    shot(browser, "family_map_hover")
    pointer_at(browser, canvas, x, y).pause(0.2).click().perform()                                          # another member: its page in this app
    wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"n24 · Feature #{fid}")
    assert browser.current_url.endswith(f"/map/n24/features/{fid}")
    assert browser.find_elements(By.CSS_SELECTOR, "#top-examples .ex")
    assert browser.find_elements(By.CSS_SELECTOR, "#neighbours-n48 a")      # its nearest directions in the other member
    shot(browser, "family_member_feature")

    browser.get(map_server + "/map")
    wait(browser, lambda d: d.find_element(By.ID, "family-map").get_attribute("data-ready") == "1")
    canvas = browser.find_element(By.ID, "family-map")
    fid, x, y = isolated_point(browser.execute_script("return familyMap.screenPoints()"), "n48")
    pointer_at(browser, canvas, x, y).pause(0.2).click().perform()                                          # the served member: its full feature page
    wait(browser, lambda d: d.find_element(By.ID, "feature-title").text == f"Feature #{fid}")
    assert browser.current_url.endswith(f"/features/{fid}")
    no_console_errors(browser)


def test_map_refusals(map_server, family):
    import urllib.error
    import urllib.request

    for path, status in (("/map/n99/features/0", 404), ("/map/n24/features/24", 404), ("/map/..%2Fn48/features/0", 404)):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(map_server + path, timeout=30)
        assert e.value.code == status, path


def test_a_members_report_shows_the_family_map(family):
    from monosemantic.report.build import build_report

    index = build_report(family / "n24").read_text()
    assert '<img src="analysis/geometry/umap.png"' in index
    assert (family / "n24" / "report" / "analysis" / "geometry" / "umap.png").read_bytes()[:4] == b"\x89PNG"
