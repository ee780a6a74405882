"""`monosemantic multilingual RUN`: language-agnostic vs language-specific features on
the corpus's aligned passages (docs/multilingual.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.multilingual_config import MultilingualConfig

    d = MultilingualConfig()
    parser = sub.add_parser(
        "multilingual", help="how similarly each feature fires on the same passage in different languages",
        description="Score every feature of RUN on passages of the Debian handbook aligned across languages: the mean "
        "pairwise correlation of its per-passage activation against a shuffled-alignment baseline. Writes "
        "RUN/analysis/multilingual/ (result.json, scores.png, by_size.png); the report and the web UI show it.")
    parser.add_argument("run", help="run directory with sae/ and a store (its own or lent)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="RUN",
                        help="other runs on the same store (e.g. a size family), scored in the same pass")
    parser.add_argument("--languages", default=",".join(d.languages), help=f"comma-separated (default {','.join(d.languages)})")
    parser.add_argument("--passages", type=int, default=d.passages, help=f"aligned passages, each in every language (default {d.passages})")
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens, help=f"skip passages longer than this in any language (default {d.max_tokens})")
    parser.add_argument("--pool", choices=("max", "mean"), default=d.pool, help="per passage: max or mean over its valid tokens (default max)")
    parser.add_argument("--quantile", type=float, default=d.quantile, help=f"agnostic above this quantile of the baseline (default {d.quantile})")
    parser.add_argument("--top", type=int, default=d.top, help=f"features with side-by-side examples (default {d.top})")
    parser.add_argument("--corpus", default=None, help="corpus directory holding the alignment (default: the embedded corpus in the cache)")
    parser.set_defaults(func=_multilingual)


def _multilingual(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..analysis.multilingual_config import MultilingualConfig
    from ..analysis.multilingual_run import OUT, run_multilingual
    from ..errors import ConfigError

    if args.passages < 20 or args.max_tokens < 8 or not 0 < args.quantile < 1 or args.top < 0:
        raise ConfigError("--passages must be >= 20, --max-tokens >= 8, --quantile in (0, 1), --top >= 0")
    languages = tuple(lang.strip() for lang in args.languages.split(",") if lang.strip())
    cfg = MultilingualConfig(languages=languages, passages=args.passages, max_tokens=args.max_tokens, pool=args.pool,
                             quantile=args.quantile, top=args.top, compare=list(args.compare))
    r = run_multilingual(args.run, cfg, corpus_dir=Path(args.corpus) if args.corpus else None)
    print(f"{r['n_passages']} passages x {len(r['languages'])} languages ({', '.join(r['languages'])}), {r['pool']} per passage")
    print(f"live features {r['live']:,}: language-agnostic {r['agnostic_fraction']:.1%} ({r['agnostic']:,}), "
          f"language-specific {r['specific_fraction']:.1%} ({r['specific']:,}); threshold r > {r['threshold']:.3f} "
          f"(the shuffled baseline's {args.quantile:.0%} quantile; {r['baseline_agnostic_fraction']:.1%} of shuffled scores pass it)")
    print(f"  of which cross-lingual (peak on different tokens) {r['cross_lingual_fraction']:.1%} ({r['agnostic_cross_lingual']:,}), "
          f"same-token (an untranslated string in every language) {r['same_token_fraction']:.1%} ({r['agnostic_same_token']:,})")
    print(f"mean score of live features {r['mean_score_live']:.3f} vs shuffled {r['mean_baseline_live']:.3f}")
    for row in r["by_size"][1:] if len(r["by_size"]) > 1 else []:
        print(f"  {row['run']} ({row['n_latents']:,} latents): agnostic {row['agnostic_fraction']:.1%} "
              f"(cross-lingual {row['cross_lingual_fraction']:.1%}), specific {row['specific_fraction']:.1%}")
    for t in r["top"][:5]:
        peaks = "/".join(dict.fromkeys(s["top_token"].strip() for s in t["examples"][0]["languages"].values())) if t["examples"] else ""
        print(f"  feature {t['feature']}: r {t['score']:.3f} (shuffled {t['baseline']:.3f}), peaks on {peaks!r}")
    print(f"{r['seconds']['total']:.0f} s; written to {Path(args.run) / OUT}")
    return 0
