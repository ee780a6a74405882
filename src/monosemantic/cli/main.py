"""Entry point. Each module in COMMAND_MODULES has `register(subparsers)` that adds
its subcommands with `set_defaults(func=handler)`; a handler takes the parsed
arguments and returns an exit code.

Handlers import their stage's library inside the function: every command module is
imported to build the parser, and importing web, steering, autointerp and scaling up
front doubled the start-up of every command (`monosemantic --help`: 14 s deferred vs
30 s up front, measured on this project's loaded 2-core machine)."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys

from .. import __version__
from ..allocator import keep_freed_memory
from ..errors import ConfigError, MonosemanticError
from .interop import add_sae_option, use_sae_option

COMMAND_MODULES = [
    "monosemantic.cli.corpus",
    "monosemantic.cli.harvest",
    "monosemantic.cli.store",
    "monosemantic.cli.train",
    "monosemantic.cli.eval",
    "monosemantic.cli.features",
    "monosemantic.cli.pipeline",
    "monosemantic.cli.steering",
    "monosemantic.cli.concept_catalogue",
    "monosemantic.cli.autointerp",
    "monosemantic.cli.serve",
    "monosemantic.cli.scaling",
    "monosemantic.cli.interop",
    "monosemantic.cli.analysis",
    "monosemantic.cli.multilingual",
    "monosemantic.cli.images",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monosemantic",
        description="Dictionary learning on language models: corpus -> harvest -> train -> eval.",
    )
    parser.add_argument("--version", action="version", version=f"monosemantic {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log messages, only results and errors (TQDM_DISABLE=1 turns off the bars alone)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    add_sae_option(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --nproc: the command each rank runs
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    saved_env, saved_level = os.environ.get("TQDM_DISABLE"), logging.getLogger().level
    if args.quiet:  # progress.py reads TQDM_DISABLE; restored below for in-process callers
        os.environ["TQDM_DISABLE"] = "1"
        logging.getLogger().setLevel(logging.ERROR)
    keep_freed_memory()   # every command's repeated passes reuse freed pages (allocator.py)
    try:
        check_utf8(args)
        use_sae_option(args)
        return int(args.func(args) or 0)
    except MonosemanticError as e:
        from ..distributed import rank_prefix

        print(f"monosemantic: error: {rank_prefix()}{e}", file=sys.stderr)
        return 1
    except OSError as e:  # the file system refused (full, read-only, permissions, not a directory)
        print(f"monosemantic: error: {os_error_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("monosemantic: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        if args.quiet:
            if saved_env is None:
                os.environ.pop("TQDM_DISABLE", None)
            else:
                os.environ["TQDM_DISABLE"] = saved_env
            logging.getLogger().setLevel(saved_level)


def check_utf8(args: argparse.Namespace) -> None:
    """Arguments that are not valid UTF-8 reach Python as lone surrogates and would
    fail deep inside a tokenizer or a JSON writer."""
    for name, value in vars(args).items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    flag = "--" + name.replace("_", "-") if name != "run" else "RUN"
                    raise ConfigError(f"{flag} is not valid UTF-8 ({v.encode('utf-8', 'surrogateescape')[:60]!r}): "
                                      "pass it in UTF-8") from None


HINTS = {errno.ENOSPC: "free some space and run again", errno.EROFS: "the file system is read-only: use a writable run directory",
         errno.EACCES: "check the permissions", errno.ENOTDIR: "a path component is a file, not a directory",
         errno.EEXIST: "a file is in the way", errno.EDQUOT: "over the disk quota: free some space"}


def os_error_message(e: OSError) -> str:
    where = f" ({e.filename})" if e.filename else ""
    what = e.strerror or str(e) or type(e).__name__
    hint = HINTS.get(e.errno)
    return f"{what}{where}" + (f": {hint}" if hint else "")


if __name__ == "__main__":
    sys.exit(main())
