"""Units scored per second by each offline scorer of `monosemantic interpret`: the
fast path (shared prefixes run once through a KV cache, only the sampled SAE latents
encoded) against the plain reference path, side by side on the same units, and
whether they give the same scores.

One process, one text pool (RUN's cached pool when there, else built once), one set of
chunk embeddings; then each chunk of units is scored by both paths, in alternating
order (the machine is shared and noisy), with each scorer's seconds taken from the same
pass (N2G: pruning and substitution forwards plus matching; embedding: AUROC and
intruder; ablation: the clean and ablated forwards; activations: the units on the
pool). Nothing is written into RUN except the pool cache `interpret` itself writes.

    python benchmarks/interpret.py RUN [--units feature:25,neuron:25]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

from monosemantic.autointerp import InterpretConfig, parse_units
from monosemantic.autointerp.interpret import _load, _unit_records, select_units
from monosemantic.autointerp.pool import UnitForward, build_pool, cached_pool
from monosemantic.autointerp.scorers import embedding
from monosemantic.autointerp.units import make_units
from monosemantic.features import FeatureDB
from monosemantic.features.streamer import neuron_directions


def compare(ref: list, fast: list) -> tuple[float, int, int]:
    """(largest |score difference|, units whose N2G patterns differ, units whose unscored reasons differ)."""
    worst, patterns, reasons = 0.0, 0, 0
    for (_, s_ref, u_ref, _), (_, s_fast, u_fast, _) in zip(ref, fast):
        reasons += u_ref != u_fast
        for key in set(s_ref) & set(s_fast):
            worst = max(worst, abs(s_ref[key][0] - s_fast[key][0]))
        p_ref, p_fast = (s.get("n2g_f1", (0, {}))[1].get("patterns") for s in (s_ref, s_fast))
        patterns += p_ref != p_fast
    return worst, patterns, reasons


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="run directory with sae/ and features.db built with --neurons")
    ap.add_argument("--units", default="feature:25,neuron:25")
    ap.add_argument("--seed", type=int, default=1, help="unit sample seed (default 1: not the units `interpret` scores by default)")
    args = ap.parse_args()
    cfg = InterpretConfig(units=parse_units(args.units), seed=args.seed)
    t0 = time.perf_counter()
    with FeatureDB(args.run, readonly=True) as db:
        run_dir, selected, layer, outlier = db.run_dir, select_units(db, cfg), int(db.meta["layer"]), db.meta.get("outlier_threshold")
    lm, sae, tokens, sources = _load(run_dir, "float32", None, None, None, None)
    key = {"pool": asdict(cfg.pool), "model": lm.name, "dtype": str(lm.dtype), "layer": layer, "tokens": tokens.digest()}
    pool = cached_pool(run_dir / "autointerp" / "pool.safetensors", key,
                       lambda: build_pool(lm, layer, tokens, sources, cfg.pool, outlier, progress=True))
    chunks = embedding.make_chunks(pool, lambda ids: lm.tokenizer.decode(ids, skip_special_tokens=True),
                                   embedding.SentenceEmbedder(), cfg.embedding)
    one_off = time.perf_counter() - t0
    forward, explain_resid = UnitForward(lm, layer), pool.resid[pool.explain_valid]
    writes = neuron_directions(forward.neuron_module)
    decode = lambda t: lm.tokenizer.decode([int(t)])  # noqa: E731
    timing = {"reference": {}, "fast": {}}
    worst, patterns, reasons, n = 0.0, 0, 0, 0
    for i, (kind, ids) in enumerate((k, ids[s : s + cfg.chunk]) for k, ids in selected.items() for s in range(0, len(ids), cfg.chunk)):
        out = {}
        for path in (("reference", "fast") if i % 2 == 0 else ("fast", "reference")):
            c = replace(cfg, reference=path == "reference")
            units = make_units(kind, ids, explain_resid, sae=sae, neuron_writes=writes, seed=c.seed, reference=c.reference)
            out[path] = _unit_records(kind, units, pool, lm, forward, chunks, c, decode, timing[path])
        w, p, r = compare(out["reference"], out["fast"])
        worst, patterns, reasons, n = max(worst, w), patterns + p, reasons + r, n + len(ids)
    print(f"{n} units ({args.units}) of {Path(args.run)}; one-off (model, pool, chunk embeddings) {one_off:.0f} s")
    print(f"{'stage':<12} {'reference u/s':>14} {'fast u/s':>10} {'speed-up':>9}")
    for stage in ("activations", "n2g", "embedding", "ablation", "total"):
        ref, fast = (sum(t.values()) if stage == "total" else t[stage] for t in (timing["reference"], timing["fast"]))
        print(f"{stage:<12} {n / ref:14.2f} {n / fast:10.2f} {ref / fast:8.2f}x   ({ref:.1f} s vs {fast:.1f} s)")
    print(f"same results: largest score difference {worst:.2e}; N2G patterns differ on {patterns} of {n} units; "
          f"unscored reasons differ on {reasons}")


if __name__ == "__main__":
    main()
