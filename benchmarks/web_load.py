"""Inspector latency while the largest steering request the server accepts runs, over
real HTTP (uvicorn on a loopback port), beside the same inspection on an idle server,
in one run:

    .venv/bin/python benchmarks/web_load.py RUN [--json out.json]

The maximal steer: a 4,000-character prompt of digits if the server takes it (the code
before the token limit did: 4,000 tokens read in one forward under the model lock), else a
prompt of exactly the token limit; 128 new tokens; 8 interventions. The inspection is
a short prompt sent 1 s after the steer starts. Prints both latencies and their ratio.
Point PYTHONPATH at another checkout's src/ to measure that code the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.web import create_app  # noqa: E402

TEXT = ("The library opened early on Saturday, and a small crowd had gathered by the door. Inside, the librarian "
        "sorted a cart of returned books: a history of the railways, two cookery books and a guide to birds. ") * 40
INSPECT = {"prompt": "The cat sat on the mat by the door."}
# The densest 4,000 characters: SmolLM2's tokenizer splits digits one per token.
DIGITS = "".join(str((i * 7919) % 10) for i in range(4000))


def post(base: str, path: str, body: dict, timeout: float = 900) -> tuple[int, float, str]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, time.perf_counter() - t0, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t0, e.read().decode()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory with features.db and sae/ (e.g. runs/main)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import uvicorn

    app = create_app(args.run)
    state = app.state.run
    state.ensure_model()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    post(base, "/api/inspect", INSPECT)  # warm-up
    idle = min(post(base, "/api/inspect", INSPECT)[1] for _ in range(3))
    limits = state.limits
    steer = {"max_new_tokens": 128, "temperature": 0.7,
             "interventions": [{"feature": i, "value": 3.0, "unit": "max"} for i in range(8)]}
    tok = state.lm.tokenizer
    candidates = [DIGITS, tok.decode(tok(TEXT, add_special_tokens=False)["input_ids"][: getattr(limits, "max_prompt_tokens", 256) - 2])]
    outcome: dict = {}

    def run_steer(prompt: str) -> None:
        outcome["steer"] = post(base, "/api/steer", {**steer, "prompt": prompt})[:2]

    accepted = None
    for prompt in candidates:
        t = threading.Thread(target=run_steer, args=(prompt,), daemon=True)
        t.start()
        t.join(1.0)
        if t.is_alive():  # running: this is the largest steer the server takes
            accepted = prompt
            break
        outcome.pop("steer", None)
    n_tokens = len(tok(accepted, add_special_tokens=False)["input_ids"])
    status, busy, _ = post(base, "/api/inspect", INSPECT)
    print(f"run {args.run}: model {state.lm.name}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"maximal steer accepted: {len(accepted):,} characters, {n_tokens:,} tokens, 128 new tokens, 8 interventions")
    print(f"inspector, idle server:          {idle:8.2f} s")
    print(f"inspector, during maximal steer: {busy:8.2f} s (HTTP {status})")
    print(f"ratio busy / idle: {busy / idle:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"idle_s": idle, "busy_s": busy, "steer_prompt_tokens": n_tokens,
                                               "loadavg": os.getloadavg()}, indent=1))
    sys.stdout.flush()
    os._exit(0)  # the steer may still be decoding in the server's thread: do not wait for it


if __name__ == "__main__":
    sys.exit(main())
