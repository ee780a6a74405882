"""Units scored per second by each offline scorer of `monosemantic interpret`.

One run, side by side: a copy of RUN/features.db is scored for --units features and
neurons (probing off), and each scorer's seconds are taken from the same pass (N2G:
pruning and substitution forwards plus matching; embedding: AUROC and intruder on
chunk embeddings computed once; ablation: two forwards per unit). The one-off costs
(the text-pool forward, chunk embeddings) are printed apart, with the cost per unit of
the whole run. Probing is timed on its own (it covers every unit of every family).

    python benchmarks/interpret.py RUN [--units feature:20,neuron:20]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from monosemantic.autointerp import InterpretConfig, interpret_run, parse_units
from monosemantic.autointerp.pool import doc_sources
from monosemantic.run import Run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="run directory with sae/ and features.db built with --neurons")
    ap.add_argument("--units", default="feature:20,neuron:20")
    ap.add_argument("--probing", action="store_true", help="also time k-sparse probing")
    ap.add_argument("--seed", type=int, default=1, help="unit sample seed (default 1: not the units `interpret` scores by default)")
    args = ap.parse_args()
    run = Path(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        copy.mkdir()
        shutil.copy(run / "features.db", copy / "features.db")
        (copy / "sae").symlink_to((run / "sae").resolve())
        (copy / "config.json").write_bytes((run / "config.json").read_bytes()) if (run / "config.json").is_file() else None
        for name in ("pool.safetensors", "pool.json"):  # the run's cached text pool, if any, is reused (printed below)
            if (run / "autointerp" / name).is_file():
                (copy / "autointerp").mkdir(exist_ok=True)
                (copy / "autointerp" / name).symlink_to((run / "autointerp" / name).resolve())
        # the copy reads the original's tokens (a Run follows an --activations store)
        original = Run.of(run)
        units = parse_units(args.units)
        t0 = time.perf_counter()
        r = interpret_run(copy, InterpretConfig(units=units, probing=args.probing, seed=args.seed), tokens=original.tokens(),
                          sources=doc_sources(original.data_root), lm=original.load_model(dtype="float32"), sae=original.sae())
        total = time.perf_counter() - t0
    n = sum(len(v) for v in r.selected.values())
    print(f"{n} units ({args.units}) on {run}; {total:.0f} s in all, {total / n:.2f} s per unit with the one-off costs")
    print(f"one-off: text pool (cached: {(run / 'autointerp' / 'pool.safetensors').is_file()}) + chunk embeddings "
          f"{r.seconds.get('pool', 0):.1f} s")
    for name, sec in r.scorer_seconds.items():
        print(f"  {name:<12} {n / max(sec, 1e-9):8.2f} units/s  ({sec:.1f} s)")
    if "probing" in r.seconds:
        print(f"  probing      {r.seconds['probing']:.1f} s for every unit of every family")


if __name__ == "__main__":
    main()
