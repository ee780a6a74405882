"""The serving layer's limits on the tiny run: token limit on every model endpoint,
the prompt read in chunks (same completions), the compute budget, the bounded queue
(503 + Retry-After), the body size limit and the loopback Host check."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from monosemantic.web import create_app
from monosemantic.web.guard import LOOPBACK_HOSTS, host_name
from monosemantic.web.state import Limits

STEER = {"max_new_tokens": 6, "temperature": 0.7, "seed": 3, "interventions": [{"feature": 1, "value": 4.0}]}
LONG = "the river runs past the old mill and down to the sea " * 6


def _client(web_run, tiny_llama, **limits) -> TestClient:
    return TestClient(create_app(web_run, lm=tiny_llama, limits=Limits(**limits)))


def test_prompt_read_in_chunks_gives_the_same_completions(web_run, tiny_llama):
    # greedy: chunked attention differs by ~2e-7 in the logits, and sampling from the
    # random tiny model's flat 49k-token distribution can flip on that; argmax does not
    with _client(web_run, tiny_llama, prefill_tokens=10_000) as whole, _client(web_run, tiny_llama, prefill_tokens=5) as chunked:
        for seed in (0, 1):
            body = {**STEER, "prompt": LONG, "temperature": 0.0, "seed": seed}
            a, b = whole.post("/api/steer", json=body).json(), chunked.post("/api/steer", json=body).json()
            assert a["steered"] == b["steered"] and a["unsteered"] == b["unsteered"] and a["stopped"] is None


@pytest.mark.parametrize("path", ["/api/inspect", "/api/steer", "/api/steer/stream"])
def test_every_model_endpoint_has_the_token_limit(path, web_run, tiny_llama):
    with _client(web_run, tiny_llama, max_prompt_tokens=16) as c:
        r = c.post(path, json={**STEER, "prompt": LONG})
        assert r.status_code == 400 and "tokens; the limit is 16" in r.json()["detail"]
        assert c.app.state.run.model_requests == 0  # the refused request left the queue


def test_compute_budget_stops_a_steer_and_says_so(web_run, tiny_llama):
    with _client(web_run, tiny_llama, max_request_seconds=0.0) as c:
        r = c.post("/api/steer", json={**STEER, "prompt": LONG})
        assert r.status_code == 200 and r.json()["stopped"] == "budget" and r.json()["steered"] == ""
        events = [json.loads(line[6:]) for line in c.post("/api/steer/stream", json={**STEER, "prompt": LONG}).text.splitlines()
                  if line.startswith("data: ")]
        assert events[-1]["type"] == "done" and events[-1]["stopped"] == "budget"


def test_full_queue_answers_503_with_retry_after(web_run, tiny_llama):
    with _client(web_run, tiny_llama, max_queued=2) as c:
        state = c.app.state.run
        for _ in range(3):  # one running and two waiting, held by the test
            state.admit()
        try:
            for path in ("/api/inspect", "/api/steer", "/api/steer/stream"):
                r = c.post(path, json={**STEER, "prompt": "rivers"})
                assert r.status_code == 503 and r.headers["retry-after"].isdigit(), (path, r.text)
                assert "busy" in r.json()["detail"]
            assert c.get("/features/3").status_code == 200  # browsing needs no model slot
        finally:
            for _ in range(3):
                state.release()
        assert c.post("/api/inspect", json={"prompt": "rivers"}).status_code == 200


def test_body_size_limit(web_run, tiny_llama):
    with _client(web_run, tiny_llama, max_body_bytes=2048) as c:
        r = c.post("/api/inspect", json={"prompt": "x" * 3000})
        assert r.status_code == 413 and "limit is 2,048" in r.json()["detail"]

        def chunks():  # no Content-Length: counted as it arrives
            yield b'{"prompt": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        r = c.post("/api/inspect", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post("/api/inspect", json={"prompt": "rivers"}).status_code == 200


def test_loopback_server_refuses_foreign_host_headers(web_run):
    with TestClient(create_app(web_run, model=False, allowed_hosts=LOOPBACK_HOSTS), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/run").status_code == 200
        for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
            assert c.get("/api/run", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
            r = c.get("/api/run", headers={"host": host})
            assert r.status_code == 421 and "not served here" in r.json()["detail"], host


def test_host_name_parsing():
    assert [host_name(h) for h in ("[::1]:80", "LOCALHOST:1", "::1", "a.b")] == ["::1", "localhost", "::1", "a.b"]
