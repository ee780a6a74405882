"""`monosemantic analyze splitting FAMILY`: feature splitting across the family's sizes
(the matching rule and its thresholds: split_match.py; docs/analysis.md).

Every member is encoded on one uniform sample of store rows (`--rows`; sparse codes
cached per member in FAMILY/analysis/codes/, so a killed run resumes); consecutive members are matched (each
feature of the larger one gets at most one parent in the smaller one), which gives a
tree per feature of the smallest member. Writes FAMILY/analysis/splitting/:
  splitting.json        settings, per member pair: alive parents, the fraction with ≥ 2
                        children, the children-count distribution, matched children; cost
  trees.json            one tree per smallest-member feature (ids, cosine, co-activation)
  examples.json         each tree node's strongest sampled tokens as text
  children_counts.png   the children-count distributions
The web UI shows the trees at /splitting (web/splitting.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "splitting"
DEFAULT_ROWS = 60_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .split_match import SplitConfig

    d = SplitConfig()
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"store rows every member is encoded on (default {DEFAULT_ROWS:,})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the row sample (default 0)")
    parser.add_argument("--min-cosine", type=float, default=d.min_cosine, help=f"decoder cosine of parent and child (default {d.min_cosine})")
    parser.add_argument("--min-coactivation", type=float, default=d.min_coactivation,
                        help=f"P(parent fires | child fires) on the sampled rows (default {d.min_coactivation})")
    parser.add_argument("--min-fires", type=int, default=d.min_fires, help=f"sampled rows a child must fire on to be judged (default {d.min_fires})")
    parser.add_argument("--examples", type=int, default=3, help="top examples kept per tree node (default 3)")


def _distribution(counts) -> list[int]:
    """[parents with 0 children, with 1, with 2, ...]."""
    import numpy as np

    return np.bincount(counts).astype(int).tolist() if len(counts) else [0]


def _tree_nodes(tree: dict, out: set[tuple[int, int]]) -> None:
    out.add((tree["member"], tree["id"]))
    for child in tree.get("children", []):
        _tree_nodes(child, out)


def run(target: str | Path, out_dir: str | Path | None = None, *, rows: int = DEFAULT_ROWS, seed: int = 0,
        min_cosine: float | None = None, min_coactivation: float | None = None, min_fires: int | None = None,
        examples: int = 3, progress: bool = True) -> dict:
    import numpy as np

    from .. import atomic
    from ..errors import ConfigError
    from ..progress import bars_disabled
    from .codes import top_examples
    from .family import open_family
    from .figures import children_counts_figure
    from .registry import output_dir
    from .shared_rows import member_codes, sample_rows, snippet, store_rows, vocab_bytes_of
    from .split_match import SplitConfig, build_trees, children_counts, match_features, split_fraction, tree_size

    start = time.perf_counter()
    progress = progress and not bars_disabled()
    family = open_family(target)
    out = Path(out_dir) if out_dir is not None else output_dir(family.dir, NAME)
    d = SplitConfig()
    cfg = SplitConfig(d.min_cosine if min_cosine is None else float(min_cosine),
                      d.min_coactivation if min_coactivation is None else float(min_coactivation),
                      d.min_fires if min_fires is None else int(min_fires))
    if rows < 100 or examples < 1:
        raise ConfigError(f"--rows must be at least 100 and --examples at least 1 (got {rows}, {examples})")
    run0 = family.members[0]
    store = run0.store()
    where = store_rows(store)                              # before any work: a plain .npy store has no text to show
    contexts, vocab = np.asarray(run0.tokens().contexts), vocab_bytes_of(run0)
    index = sample_rows(store.count, rows, seed)
    codes = [member_codes(m, store, index, family.analysis_dir / "codes", progress) for m in family.members]
    t_encode = time.perf_counter() - start
    names, sizes = family.names, family.sizes
    matches, pairs, figure_pairs = [], [], []
    for level in range(len(family.members) - 1):
        w_parent = family.members[level].sae().W_dec
        w_child = family.members[level + 1].sae().W_dec
        m = match_features(codes[level], codes[level + 1], w_parent, w_child, cfg)
        matches.append(m)
        parent_fires = np.asarray((codes[level] > 0).sum(axis=0)).ravel()
        alive = parent_fires >= cfg.min_fires                     # parents that could have been judged
        counts = children_counts(m, sizes[level])
        judged_children = m.fires >= cfg.min_fires
        pairs.append({
            "parent": names[level], "child": names[level + 1],
            "alive_parents": int(alive.sum()), "split_fraction": round(split_fraction(counts, alive), 4),
            "children_distribution": _distribution(counts[alive]),
            "mean_children": round(float(counts[alive].mean()) if alive.any() else 0.0, 3),
            "judged_children": int(judged_children.sum()),
            "matched_children": int((m.parent >= 0).sum()),
            "matched_fraction": round(float((m.parent >= 0)[judged_children].mean()) if judged_children.any() else 0.0, 4),
            "median_cosine_matched": round(float(np.median(m.cosine[m.parent >= 0])) if (m.parent >= 0).any() else 0.0, 4),
        })
        figure_pairs.append((f"{names[level]} → {names[level + 1]}", counts[alive]))
    trees = build_trees(matches, sizes)
    root_fires = np.asarray((codes[0] > 0).sum(axis=0)).ravel()
    for t in trees:
        t["size"] = tree_size(t)
        t["fires"] = int(root_fires[t["id"]])

    # the strongest sampled tokens of every node of every tree, as text
    nodes: set[tuple[int, int]] = set()
    for t in trees:
        _tree_nodes(t, nodes)
    tops = [top_examples(c, examples) for c in codes]
    shown: dict[str, dict[str, list]] = {name: {} for name in names}
    for level, fid in sorted(nodes):
        ex = []
        for r, a in zip(tops[level].rows[fid], tops[level].acts[fid]):
            if r < 0:
                break
            ctx, pos = int(where[index[r], 0]), int(where[index[r], 1])
            ex.append([*snippet(contexts, vocab, ctx, pos), round(float(a), 3)])
        shown[names[level]][str(fid)] = ex

    atomic.write_json(out / "trees.json", {"members": names, "sizes": sizes, "trees": trees})
    atomic.write_json(out / "examples.json", shown)
    children_counts_figure(figure_pairs, out / "children_counts.png")
    summary = {
        "family": str(family.dir), "members": [{"name": n, "n_latents": s} for n, s in zip(names, sizes)],
        "rows": int(len(index)), "seed": seed,
        "thresholds": {"min_cosine": cfg.min_cosine, "min_coactivation": cfg.min_coactivation,
                       "min_fires": cfg.min_fires, "candidates": cfg.candidates},
        "pairs": pairs,
        "split_fraction": pairs[0]["split_fraction"],
        "trees_with_grandchildren": int(sum(any(c.get("children") for c in t.get("children", [])) for t in trees)),
        "seconds": {"encode": round(t_encode, 1), "total": round(time.perf_counter() - start, 1)},
    }
    atomic.write_json(out / "splitting.json", summary)
    return {"split fraction (smallest member, ≥ 2 children)": summary["split_fraction"],
            **{f"{p['parent']} -> {p['child']}": f"{100 * p['split_fraction']:.1f} % of {p['alive_parents']:,} alive split; "
               f"{p['matched_children']:,} of {p['judged_children']:,} judged children matched" for p in pairs},
            "seconds": summary["seconds"]["total"], "written": str(out)}
