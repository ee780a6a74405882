"""`monosemantic corpus build|info`: the text a run harvests from."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("corpus", help="build or inspect a text corpus", description="Build or inspect a text corpus.")
    corpus_sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    build = corpus_sub.add_parser(
        "build", help="build the embedded corpus (default) or one from your files",
        description="Without --inputs: build the embedded corpus (Python sources, Debian documentation, "
        "dictionaries, fortunes, the multilingual Debian handbook) into the cache, once. With --inputs: "
        "clean and store your text files, JSONL files, directories or hf:NAME[:split] datasets in --out.",
    )
    build.add_argument("--inputs", nargs="+", default=None, metavar="PATH",
                       help="text/JSONL files, directories or hf:NAME[:split] (default: the embedded corpus)")
    build.add_argument("--out", default=None, help="output directory (required with --inputs; default for the embedded corpus: the cache)")
    build.add_argument("--text-field", default="text", help='JSONL / dataset field holding the text (default "text")')
    build.add_argument("--seed", type=int, default=0, help="seed recorded in the manifest (default 0)")
    build.set_defaults(func=_build)

    info = corpus_sub.add_parser("info", help="documents, characters and licence of each source")
    info.add_argument("dir", nargs="?", default=None, help="corpus directory (default: the embedded corpus in the cache)")
    info.set_defaults(func=_info)


def _build(args: argparse.Namespace) -> int:
    from ..data import build_corpus

    out = build_corpus(args.inputs, Path(args.out) if args.out else None, seed=args.seed, text_field=args.text_field)
    print(f"corpus in {out} (inspect: monosemantic corpus info {out})")
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..data import load_corpus
    from ..data.corpus import cache_dir

    corpus = load_corpus(Path(args.dir) if args.dir else cache_dir())
    m = corpus.manifest
    rows = [(name, s["kind"], s["language"], f"{s['documents']:,}", f"{s['characters']:,}", s["licence"]) for name, s in m["sources"].items()]
    rows.append(("total", "", "", f"{m['total_documents']:,}", f"{m['total_characters']:,}", ""))
    header = ("source", "kind", "lang", "documents", "characters", "licence")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.rjust(w) if i in (3, 4) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    for name, package in m.get("skipped", {}).items():
        print(f"skipped {name}: install the Debian package {package}")
    for name, p in (m.get("parallel") or {}).get("sources", {}).items():
        langs = ", ".join(f"{lang} {n:,}" for lang, n in p["languages"].items())
        print(f"parallel text ({m['parallel']['file']}): {name}, {p['passages']:,} aligned passages on {p['pages']} pages: {langs}")
    if m.get("note"):
        print(f"note: {m['note']}")
    return 0
