"""What one UMAP of a family's decoder directions costs (issue 16: ~40k directions in
under 4 GB): time and peak resident memory of `analysis.map2d.umap_2d`, the call
`analyze geometry` makes, on the decoder rows of a family's members (their SAEs, or,
while they train, their latest checkpoints) or on random unit directions.

    .venv/bin/python benchmarks/geometry_umap.py --family FAMILY [--checkpoints]
    .venv/bin/python benchmarks/geometry_umap.py --random 43008 --d 576

Peak memory is the process's maximum RSS (getrusage), printed before and after the
UMAP, so the difference is what the map itself added."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from monosemantic.analysis.family import open_family  # noqa: E402
from monosemantic.analysis.map2d import as_unit_numpy, umap_2d  # noqa: E402
from monosemantic.train.checkpoint import load_checkpoint  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def family_directions(path: str, checkpoints: bool) -> np.ndarray:
    family = open_family(path, trained=not checkpoints)
    parts = []
    for m in family.members:
        if m.has_sae and not checkpoints:
            w = m.sae().W_dec.detach()
        else:  # the latest training checkpoint's decoder (weights only: no pickled objects)
            w = load_checkpoint(m.dir / "checkpoints")["sae"]["W_dec"]
        parts.append(as_unit_numpy(w))
        print(f"{m.dir.name}: {w.shape[0]:,} directions", flush=True)
    return np.concatenate(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--family", help="family directory")
    g.add_argument("--random", type=int, help="this many random unit directions")
    p.add_argument("--checkpoints", action="store_true", help="with --family: members' latest checkpoints")
    p.add_argument("--d", type=int, default=576, help="with --random: width (default 576, SmolLM2-135M)")
    args = p.parse_args()
    if args.family:
        x = family_directions(args.family, args.checkpoints)
    else:
        x = as_unit_numpy(torch.randn(args.random, args.d, generator=torch.Generator().manual_seed(0)))
    before = peak_mb()
    start = time.perf_counter()
    xy = umap_2d(x)
    seconds = time.perf_counter() - start
    print(f"UMAP of {x.shape[0]:,} directions x {x.shape[1]}: {seconds:.0f} s; peak RSS {before:,.0f} MB before, "
          f"{peak_mb():,.0f} MB after (limit 4,096 MB); map {xy.shape}")


if __name__ == "__main__":
    main()
