"""The web tests' small real run, shared with these tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from web.conftest import build_web_run  # noqa: E402


@pytest.fixture(scope="session")
def web_run(tiny_llama, tmp_path_factory) -> Path:
    return build_web_run(tiny_llama, tmp_path_factory.mktemp("robust-web-run"))
