"""Entry point. Each module in COMMAND_MODULES has `register(subparsers)` that adds
its subcommands with `set_defaults(func=handler)`; a handler takes the parsed
arguments and returns an exit code.

Handlers import their stage's library inside the function: every command module is
imported to build the parser, and importing web, steering, autointerp and scaling up
front doubled the start-up of every command (`monosemantic --help`: 14 s deferred vs
30 s up front, measured on this project's loaded 2-core machine)."""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import MonosemanticError

COMMAND_MODULES = [
    "monosemantic.cli.corpus",
    "monosemantic.cli.harvest",
    "monosemantic.cli.store",
    "monosemantic.cli.train",
    "monosemantic.cli.eval",
    "monosemantic.cli.features",
    "monosemantic.cli.pipeline",
    "monosemantic.cli.steering",
    "monosemantic.cli.autointerp",
    "monosemantic.cli.serve",
    "monosemantic.cli.scaling",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monosemantic",
        description="Dictionary learning on language models: corpus -> harvest -> train -> eval.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MonosemanticError as e:
        print(f"monosemantic: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("monosemantic: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
