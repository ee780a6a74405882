"""Web server speed on a real run (issue 8's targets), in one run:

1. Feature page: GET /features/{id} (the HTML page: statistics, examples with
   token highlighting, histogram, logit effects, neighbours) and /api/features/{id},
   for many live features chosen at random; median and p90 server time
   (target: median < 200 ms).
2. Prompt inspection: POST /api/inspect with a prompt of exactly 128 tokens
   (target < 2 s), model load excluded (timed on its own, once).

Both are measured in-process through the ASGI app (fastapi TestClient: server time
plus a negligible in-memory transport) and, with --http, over real HTTP against
uvicorn on a free loopback port (what a browser sees on this machine).

    .venv/bin/python benchmarks/web.py RUN [--features 200] [--inspect 5] [--http] [--json out.json]

The run is opened read-only (features.db with mode=ro); nothing is written into it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.web import create_app  # noqa: E402

PAGE_TARGET_S, INSPECT_TARGET_S, PROMPT_TOKENS = 0.200, 2.0, 128

TEXT = ("The library opened early on Saturday, and a small crowd had already gathered by the door. Inside, the "
        "librarian was sorting a cart of returned books: a history of the railways, two cookery books, a guide to "
        "birds of the coast and a worn paperback thriller. A child asked where the dinosaur books were kept, and an "
        "old man at the window table read the newspaper slowly, folding each page with care. Outside, the market "
        "stalls were being set up along the square, with crates of apples, cheese, fresh bread and flowers. ") * 3


def prompt_of(tokenizer, n: int) -> str:
    """Text that tokenizes to exactly n tokens (as the inspector counts them)."""
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    for cut in range(n, n - 8, -1):
        text = tokenizer.decode(ids[:cut])
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n:
            return text
        text = tokenizer.decode(ids[: cut + 1])
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n:
            return text
    raise RuntimeError(f"could not cut the text to exactly {n} tokens")


def summary(times: list[float]) -> dict:
    s = sorted(times)
    return {"n": len(s), "median_s": statistics.median(s), "p90_s": s[min(len(s) - 1, int(0.9 * len(s)))], "max_s": s[-1]}


def line(name: str, st: dict, target: float) -> str:
    return (f"{name:<44} median {st['median_s'] * 1e3:8.1f} ms  p90 {st['p90_s'] * 1e3:8.1f} ms  max {st['max_s'] * 1e3:8.1f} ms"
            f"  (n={st['n']})  median/target {st['median_s'] / target:.3f}")


def measure(get, post, ids: list[int], prompt: str, inspect_repeats: int) -> dict:
    """get(path) / post(path, json) -> (status, body); timings around each call."""
    out = {}
    for name, tmpl in (("feature page HTML", "/features/{}"), ("feature JSON /api/features/{id}", "/api/features/{}")):
        get(tmpl.format(ids[0]))  # first request: connection and template compile
        times = []
        for fid in ids:
            t0 = time.perf_counter()
            status, body = get(tmpl.format(fid))
            times.append(time.perf_counter() - t0)
            assert status == 200 and len(body) > 500, (fid, status, body[:200])
        out[name] = summary(times)
    times = []
    for _ in range(inspect_repeats):
        t0 = time.perf_counter()
        status, body = post("/api/inspect", {"prompt": prompt})
        times.append(time.perf_counter() - t0)
        assert status == 200, body[:300]
        n = len(json.loads(body)["tokens"])
        assert n == PROMPT_TOKENS, f"the inspector saw {n} tokens, not {PROMPT_TOKENS}"
    out[f"prompt inspection, {PROMPT_TOKENS} tokens"] = summary(times)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run directory with features.db and sae/ (e.g. runs/main after the main job)")
    ap.add_argument("--features", type=int, default=200, help="live features whose page is timed (default 200)")
    ap.add_argument("--inspect", type=int, default=5, help="prompt inspections timed (default 5)")
    ap.add_argument("--http", action="store_true", help="also time over HTTP against uvicorn on a loopback port")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch
    from fastapi.testclient import TestClient

    torch.set_num_threads(max(1, torch.get_num_threads()))
    app = create_app(args.run)
    state = app.state.run
    if state.db_error:
        raise SystemExit(state.db_error)
    t0 = time.perf_counter()
    state.ensure_model()
    load_s = time.perf_counter() - t0
    live = [fid for (fid,) in state.db().conn.execute("SELECT id FROM features WHERE kind = 'feature' AND max_act > 0")]
    ids = random.Random(args.seed).sample(live, min(args.features, len(live)))
    prompt = prompt_of(state.lm.tokenizer, PROMPT_TOKENS)
    print(f"run {args.run}: {state.n_features} features ({len(live)} live), model {state.lm.name} "
          f"(loaded in {load_s:.1f} s, excluded), layer {state.layer}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    results = {"run": str(args.run), "model": state.lm.name, "n_features": state.n_features, "model_load_s": load_s, "loadavg": os.getloadavg(),
               "feature_ids": ids, "targets_s": {"feature_page": PAGE_TARGET_S, "inspect_128": INSPECT_TARGET_S}}
    client = TestClient(app)

    def asgi_get(path):
        r = client.get(path)
        return r.status_code, r.text

    def asgi_post(path, body):
        r = client.post(path, json=body)
        return r.status_code, r.text

    modes = [("in-process ASGI", asgi_get, asgi_post)]
    server = None
    if args.http:
        import uvicorn

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"

        def http_get(path):
            with urllib.request.urlopen(base + path, timeout=60) as r:
                return r.status, r.read().decode()

        def http_post(path, body):
            req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read().decode()

        modes.append((f"HTTP, uvicorn on 127.0.0.1:{port}", http_get, http_post))

    for mode, get, post in modes:
        res = measure(get, post, ids, prompt, args.inspect)
        results[mode] = res
        print(f"\n{mode}")
        for name, st in res.items():
            print(line(name, st, INSPECT_TARGET_S if name.startswith("prompt") else PAGE_TARGET_S))
    if server is not None:
        server.should_exit = True
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
