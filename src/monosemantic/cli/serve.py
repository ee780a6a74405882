"""`monosemantic serve RUN`: the web feature browser, prompt inspector and steering
playground on http://127.0.0.1:8000 (docs/web.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve", help="browse features, inspect prompts and steer in a web browser",
        description="Serve RUN's feature database, prompt inspector and steering playground. Binds the loopback "
        "interface; --host 0.0.0.0 exposes it to the network (no authentication: anyone who can reach the port can run the model).",
    )
    parser.add_argument("run", help="run directory (with features.db, sae/, eval.json, metrics.jsonl), or a family directory "
                        "(`monosemantic family`): its largest member, with the family's map at /map")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--no-model", action="store_true", help="browse only: do not load the model (no inspector, no steering)")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..web import create_app

    from ..analysis.family import served_run

    run = served_run(args.run)   # a family directory: its largest member, with the family's map at /map
    if not run.is_dir():
        raise ConfigError(f"{run} is not a run directory: pass the folder holding features.db")
    if not 0 < args.port < 65536:
        raise ConfigError(f"port {args.port} is out of range 1..65535")
    if args.host not in LOOPBACK:
        print(f"monosemantic: warning: serving on {args.host}: anyone who can reach port {args.port} can browse this run "
              f"and run the model (there is no authentication); use the default 127.0.0.1 unless you mean it", file=sys.stderr)
    from ..web.guard import LOOPBACK_HOSTS

    allowed = LOOPBACK_HOSTS if args.host in LOOPBACK else None  # beyond loopback the Host is whatever name reaches it
    app = create_app(run, model=not args.no_model, preload=not args.no_model, allowed_hosts=allowed)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {run} on http://{shown}:{args.port}/  (API docs at /docs; Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
