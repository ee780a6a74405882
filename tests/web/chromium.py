"""Chromium for the browser tests: Debian's chromium driven by Selenium against uvicorn
on a free loopback port. Screenshots go to $PYTEST_ARTIFACTS or test-artifacts/web/
(gitignored). Without chromium, its driver or selenium the tests are skipped and say
which is missing."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from monosemantic.web import create_app

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium") if p and os.path.exists(p)), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and os.path.exists(p)), None)
ARTIFACTS = Path(os.environ.get("PYTEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "web"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app):
    """uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not srv.started:
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server(web_run, tiny_llama):
    with serving(create_app(web_run, lm=tiny_llama)) as url:
        yield url


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


def shot(driver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def post(url: str, body: dict) -> dict:
    import json
    import urllib.request

    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def no_console_errors(driver):
    try:
        logs = driver.get_log("browser")
    except Exception:  # not every driver exposes the log
        return
    assert not [entry for entry in logs if entry["level"] == "SEVERE"], logs
