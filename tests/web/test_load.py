"""Load on the real embedded model over real HTTP (uvicorn on a loopback port): an
inspector request is served within a bound while a maximal steering request runs,
a 4,000-character steering prompt is refused before it reaches the model (it held the
model lock for 95-134 s before the token limit), and a client that hangs up stops
its generation, streamed or not."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from monosemantic.web import create_app

sys.path.insert(0, str(Path(__file__).parents[1]))
from web.conftest import build_web_run  # noqa: E402

# Unloaded, one 32-token prefill chunk or one decode step of the embedded model takes
# ~50 ms and the inspection itself ~0.2 s; the bound leaves room for a machine loaded
# 8x over. Before the chunked prefill and the token limit the wait was 94 s.
INSPECT_BOUND_S = 15.0
TEXT = ("The library opened early on Saturday, and a small crowd had gathered by the door. Inside, the librarian "
        "sorted a cart of returned books: a history of the railways, two cookery books and a guide to birds. ") * 40


@pytest.fixture(scope="module")
def served(embedded_lm, tmp_path_factory):
    import uvicorn

    run = build_web_run(embedded_lm, tmp_path_factory.mktemp("load-run"))
    app = create_app(run, lm=embedded_lm)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app.state.run
    server.should_exit = True
    thread.join(10)


def maximal_steer(state) -> dict:
    """The largest request the server accepts: a prompt of exactly the token limit,
    the longest generation, the most interventions."""
    tok, limits = state.lm.tokenizer, state.limits
    ids = tok(TEXT, add_special_tokens=False)["input_ids"][: limits.max_prompt_tokens]
    prompt = tok.decode(ids)
    while len(tok(prompt, add_special_tokens=False)["input_ids"]) > limits.max_prompt_tokens:
        prompt = prompt[:-5]
    return {"prompt": prompt, "max_new_tokens": limits.max_new_tokens, "temperature": 0.7,
            "interventions": [{"feature": i, "value": 3.0, "unit": "max"} for i in range(limits.max_interventions)]}


def wait_drained(state, timeout: float = 10.0) -> float:
    start = time.perf_counter()
    while state.model_requests and time.perf_counter() - start < timeout:
        time.sleep(0.05)
    return time.perf_counter() - start


def test_inspector_is_served_while_a_maximal_steer_runs(served):
    base, state = served
    long = {**maximal_steer(state), "prompt": TEXT[:4000]}
    r = httpx.post(base + "/api/steer", json=long, timeout=30)
    assert r.status_code == 400 and f"the limit is {state.limits.max_prompt_tokens}" in r.json()["detail"]

    cancelled = state.stopped_early["cancelled"]
    with httpx.stream("POST", base + "/api/steer/stream", json=maximal_steer(state), timeout=60) as steer:
        lines = steer.iter_lines()
        assert json.loads(next(lines)[6:])["type"] == "start"
        time.sleep(0.3)  # the prompt is being read now
        t0 = time.perf_counter()
        r = httpx.post(base + "/api/inspect", json={"prompt": "The cat sat on the mat by the door."}, timeout=60)
        latency = time.perf_counter() - t0
        assert r.status_code == 200 and r.json()["tokens"]
        event = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
        assert event["type"] in ("token", "replace"), event  # the steer still runs: hang up on it now
    assert latency < INSPECT_BOUND_S, f"the inspector waited {latency:.1f} s behind a steering request"
    # the client hung up half way: the decoding stops and frees its queue slot
    assert wait_drained(state) < 10 and state.stopped_early["cancelled"] == cancelled + 1


def test_hanging_up_on_a_plain_steer_stops_it(served):
    base, state = served
    cancelled = state.stopped_early["cancelled"]
    body = json.dumps(maximal_steer(state)).encode()
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /api/steer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        start = time.perf_counter()
        while not state.model_requests and time.perf_counter() - start < 10:
            time.sleep(0.02)
        time.sleep(0.5)
    assert wait_drained(state) < 10 and state.stopped_early["cancelled"] == cancelled + 1
