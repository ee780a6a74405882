"""Co-firing for split matching: only each child's cosine candidates
(`split_match.candidate_cofiring`) against the whole parent x child co-firing matrix
(a sparse product, the plain way), side by side on the same sparse codes.

Codes are synthetic with the family's shape (rows x 8,192 parents, rows x 32,768
children, ~L0 firing latents per row), or a real family's cached codes (`--codes
PARENT.npz CHILD.npz` from FAMILY/analysis/codes/, with the candidates by decoder
cosine when `--family` names the family); the two must agree on every count.

    .venv/bin/python benchmarks/splitting_cofiring.py [--rows 20000] [--l0 30]
    .venv/bin/python benchmarks/splitting_cofiring.py --codes A.npz B.npz --family runs/family
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.analysis.split_match import candidate_cofiring  # noqa: E402


def codes(rows: int, n: int, l0: int, rng) -> sp.csr_matrix:
    cols = rng.integers(0, n, size=(rows, l0))                           # Zipf-free: every latent alike
    data = rng.uniform(0.1, 3.0, size=rows * l0).astype(np.float32)
    m = sp.csr_matrix((data, (np.repeat(np.arange(rows), l0), cols.ravel())), shape=(rows, n))
    m.sum_duplicates()
    return m


def full_product(parent: sp.csr_matrix, child: sp.csr_matrix, cand: np.ndarray) -> np.ndarray:
    counts = ((parent > 0).astype(np.float32).T @ (child > 0).astype(np.float32)).tocsr()   # [n_parent, n_child]
    j = np.repeat(np.arange(cand.shape[0]), cand.shape[1])
    return np.asarray(counts[cand.ravel(), j]).reshape(cand.shape).astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--l0", type=int, default=30)
    ap.add_argument("--parents", type=int, default=8192)
    ap.add_argument("--children", type=int, default=32768)
    ap.add_argument("--codes", nargs=2, metavar=("PARENT", "CHILD"), help="cached codes of two members (.npz)")
    ap.add_argument("--family", help="with --codes: the family, for the real cosine candidates")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    if args.codes:
        parent, child = (sp.load_npz(p).tocsr() for p in args.codes)
        if args.family:
            from monosemantic.analysis.family import open_family
            from monosemantic.analysis.split_match import cosine_candidates

            members = {m.sae_cfg.get("d_sae"): m for m in open_family(args.family).members}
            cand, _ = cosine_candidates(members[parent.shape[1]].sae().W_dec, members[child.shape[1]].sae().W_dec, 16)
        else:
            cand = rng.integers(0, parent.shape[1], size=(child.shape[1], 16))
        args.rows, args.l0 = parent.shape[0], round(child.nnz / child.shape[0])
        args.parents, args.children = parent.shape[1], child.shape[1]
    else:
        parent, child = codes(args.rows, args.parents, args.l0, rng), codes(args.rows, args.children, args.l0, rng)
        cand = rng.integers(0, args.parents, size=(args.children, 16))
    t = time.perf_counter()
    fast = candidate_cofiring(parent, child, cand)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    plain = full_product(parent, child, cand)
    t_plain = time.perf_counter() - t
    assert (fast == plain).all(), "the two counts disagree"
    print(f"{args.rows:,} rows, L0 {args.l0}, {args.parents:,} x {args.children:,}: candidates {t_fast:.2f} s, "
          f"full co-firing matrix {t_plain:.2f} s, ratio {t_plain / t_fast:.1f}x (counts equal)")


if __name__ == "__main__":
    main()
