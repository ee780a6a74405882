"""`monosemantic analyze completeness FAMILY`: which concepts of the catalogue
(concepts.py) get a feature specific to them in each member, against the concept's
frequency x the member's alive features, with the paper's fitted sigmoid (the rule
and its threshold: concept_presence.py; docs/analysis.md).

Every member is encoded on the rows of every mention and on a uniform sample of the
store (`--rows`, the same sample as `analyze splitting` with the same --rows and --seed;
sparse codes cached per member in FAMILY/analysis/codes/, so a killed run resumes and
the two analyses encode the sample once). A concept's
frequency is its mentions per token in the store's train split (the tokens the SAEs
were trained on); concepts with fewer than `--min-mentions` mentions in the store, or
none in the train split, are listed but not judged. A member's alive features are
those that fire at least once on the sampled rows. Writes FAMILY/analysis/completeness/:
  completeness.json   settings, the fit (midpoint, width), per member: alive features,
                      concepts present, the frequency at the midpoint; cost
  concepts.json       every judged concept x member: frequency, mentions, F1, the feature
  completeness.png    presence vs frequency x alive features, with the sigmoid"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "completeness"
DEFAULT_ROWS = 60_000
ALSO_AT = (0.3, 0.7)   # presence also counted at these F1 thresholds: how much the choice matters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .concept_presence import CompletenessConfig

    d = CompletenessConfig()
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"uniform sample of store rows standing for 'everything else' (default {DEFAULT_ROWS:,})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the row sample (default 0)")
    parser.add_argument("--min-f1", type=float, default=d.min_f1, help=f"F1 that makes a feature specific to a concept (default {d.min_f1})")
    parser.add_argument("--min-mentions", type=int, default=d.min_mentions, help=f"mentions a concept needs to be judged (default {d.min_mentions})")


def run(target: str | Path, out_dir: str | Path | None = None, *, rows: int = DEFAULT_ROWS, seed: int = 0,
        min_f1: float | None = None, min_mentions: int | None = None, progress: bool = True) -> dict:
    import numpy as np

    from .. import atomic
    from ..autointerp.pool import doc_sources
    from ..errors import ConfigError
    from ..progress import bars_disabled
    from .concept_presence import CompletenessConfig, concept_best_feature, fit_sigmoid
    from .concepts import catalogue, find_mentions, rows_of_positions
    from .family import open_family
    from .figures import completeness_figure
    from .registry import output_dir
    from .shared_rows import member_codes, sample_rows, store_rows, vocab_bytes_of

    start = time.perf_counter()
    progress = progress and not bars_disabled()
    d = CompletenessConfig()
    cfg = CompletenessConfig(d.min_f1 if min_f1 is None else float(min_f1), d.min_mentions if min_mentions is None else int(min_mentions))
    if rows < 100 or not 0 < cfg.min_f1 <= 1 or cfg.min_mentions < 1:
        raise ConfigError(f"--rows must be ≥ 100, --min-f1 in (0, 1], --min-mentions ≥ 1 (got {rows}, {cfg.min_f1}, {cfg.min_mentions})")
    family = open_family(target)
    out = Path(out_dir) if out_dir is not None else output_dir(family.dir, NAME)
    run0 = family.members[0]
    store, tokens = run0.store(), run0.tokens()
    where = store_rows(store)                                              # [N, 4]
    contexts, doc_ids = np.asarray(tokens.contexts), np.asarray(tokens.doc_ids)

    # mentions on the token stream -> store rows
    concepts = catalogue()
    found = find_mentions(concepts, contexts, vocab_bytes_of(run0), doc_ids, doc_sources(run0.data_root))
    lengths = found.stop - found.start
    mention_of_token = np.repeat(np.arange(len(lengths)), lengths)
    position = np.concatenate([np.arange(a, b) for a, b in zip(found.start, found.stop)]) if len(lengths) else np.zeros(0, np.int64)
    token_rows = rows_of_positions(where, contexts.shape[1], found.context[mention_of_token], position)
    keep = token_rows >= 0
    mention_of_token, token_rows = mention_of_token[keep], token_rows[keep]
    has_row = np.zeros(len(lengths), dtype=bool)
    has_row[mention_of_token] = True
    is_train = np.zeros(store.count, dtype=bool)
    is_train[store.split_indices("train")] = True
    first_row = np.full(len(lengths), -1, dtype=np.int64)
    first_row[mention_of_token[::-1]] = token_rows[::-1]
    n_train = int(is_train.sum())

    background = sample_rows(store.count, rows, seed)                     # the same rows as `analyze splitting`: one encoding
    mention_rows = np.unique(token_rows)
    cache = family.analysis_dir / "codes"
    backgrounds = [member_codes(m, store, background, cache, progress).tocsc() for m in family.members]
    codes = [member_codes(m, store, mention_rows, cache, progress) for m in family.members]
    t_encode = time.perf_counter() - start
    alive = [int((np.asarray((b > 0).sum(axis=0)).ravel() > 0).sum()) for b in backgrounds]

    points, listed = [], []
    for ci, concept in enumerate(concepts):
        mine = np.nonzero((found.concept == ci) & has_row)[0]
        train_mentions = int(is_train[first_row[mine]].sum()) if len(mine) else 0
        entry = {"concept": concept.key, "category": concept.category, "mentions": int(len(mine)),
                 "train_mentions": train_mentions, "frequency": train_mentions / n_train}
        listed.append(entry)
        if len(mine) < cfg.min_mentions or train_mentions == 0:
            continue
        local = np.searchsorted(mine, mention_of_token[np.isin(mention_of_token, mine)])   # mention index within the concept
        c_rows = token_rows[np.isin(mention_of_token, mine)]
        at = np.searchsorted(mention_rows, c_rows)
        bg_is_mention = np.isin(background, c_rows)
        neg_weight = (store.count - len(np.unique(c_rows))) / max(int((~bg_is_mention).sum()), 1)
        for member, c, b in zip(family.members, codes, backgrounds):
            best = concept_best_feature(c[at], local, len(mine), b, bg_is_mention, neg_weight, cfg)
            points.append({**entry, "member": member.dir.name, "feature": best.feature, "f1": round(best.score.f1, 4),
                           "precision": round(best.score.precision, 4), "recall": round(best.score.recall, 4),
                           "threshold": None if best.feature < 0 else round(best.score.threshold, 4),
                           "present": bool(best.score.f1 >= cfg.min_f1)})

    members = [{"name": m.dir.name, "n_latents": n, "alive": a} for m, n, a in zip(family.members, family.sizes, alive)]
    alive_of = {m["name"]: m["alive"] for m in members}
    fit = None
    if points:
        x = np.log10([p["frequency"] * alive_of[p["member"]] for p in points])
        try:
            f = fit_sigmoid(x, [p["present"] for p in points])
            fit = {"midpoint": f.midpoint_value, "midpoint_log10": f.midpoint, "width_log10": f.width, "points": f.n_points}
        except ValueError as e:
            fit = None
            print(f"completeness: no sigmoid fitted ({e})")
    for m in members:
        mine = [p for p in points if p["member"] == m["name"]]
        m["concepts_present"] = sum(p["present"] for p in mine)
        m["present_at_other_f1"] = {str(t): sum(p["f1"] >= t for p in mine) for t in ALSO_AT}
        m["frequency_at_midpoint"] = None if fit is None else fit["midpoint"] / max(m["alive"], 1)
    judged = len({p["concept"] for p in points})
    atomic.write_json(out / "concepts.json", {"catalogue": listed, "points": points})
    completeness_figure(members, points, fit, out / "completeness.png")
    summary = {"family": str(family.dir), "members": members, "rows": int(len(background)), "mention_rows": int(len(mention_rows)),
               "seed": seed, "min_f1": cfg.min_f1, "min_mentions": cfg.min_mentions, "catalogue_concepts": len(concepts),
               "concepts_found": int(sum(e["mentions"] > 0 for e in listed)), "concepts_judged": judged,
               "train_tokens": n_train, "fit": fit,
               "seconds": {"encode": round(t_encode, 1), "total": round(time.perf_counter() - start, 1)}}
    atomic.write_json(out / "completeness.json", summary)
    return {"concepts judged": f"{judged} of {len(concepts)} in the catalogue ({summary['concepts_found']} found in the store)",
            **{m["name"]: f"{m['concepts_present']} present, {m['alive']:,} alive" for m in members},
            "sigmoid midpoint (frequency x alive)": "-" if fit is None else f"{fit['midpoint']:.3g}",
            "seconds": summary["seconds"]["total"], "written": str(out)}
