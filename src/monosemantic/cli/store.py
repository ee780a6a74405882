"""`monosemantic store info|trace`: look inside an activation store."""

from __future__ import annotations

import argparse

from ..activations import open_store


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("store", help="inspect an activation store", description="Inspect an activation store.")
    store_sub = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)

    info = store_sub.add_parser("info", help="count, width, dtype, norm scale and corpus sources of a store")
    info.add_argument("run", help="run directory, its activations/ directory, or a [N, d] .npy")
    info.set_defaults(func=_info)

    trace = store_sub.add_parser("trace", help="show the text an activation row came from")
    trace.add_argument("run", help="run directory")
    trace.add_argument("row", type=int, help="row index in the store")
    trace.add_argument("--window", type=int, default=24, help="tokens of context on each side (default 24)")
    trace.set_defaults(func=_trace)


def _info(args: argparse.Namespace) -> int:
    store = open_store(args.run)
    m = store.manifest
    lines = [
        ("rows", f"{store.count:,}"),
        ("d", store.d),
        ("dtype", store.dtype),
        ("norm scale", f"{store.norm_scale:.6g}  (x_scaled = x_raw * scale, E|x_scaled| = sqrt(d))"),
        ("model", m.get("model", "?")),
        ("layer", f"{m.get('layer', '?')}  ({m.get('hook_name', '')})"),
        ("shards", len(store.shards)),
        ("excluded", f"{m['excluded_fraction']:.3%} of tokens above {m['outlier_threshold']:.0f}" if "excluded_fraction" in m else "-"),
        ("held out", f"{len(store.split_indices('heldout')):,} rows"),
    ]
    for source in m.get("sources", []):
        lines.append(("source", f"{source['name']}: {source['documents']:,} docs, {source['characters']:,} chars ({source.get('licence', '?')})"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    return 0


def _trace(args: argparse.Namespace) -> int:
    from ..activations.trace import trace_row

    print(trace_row(args.run, args.row, window=args.window))
    return 0
