"""First-token artifacts in a feature database (issue 13, item 3): the fraction of
live features whose top examples all sit at position 1 (the first token after the
BOS) or on a special token (BOS, separator), and the ten densest features with the
share of such examples and the largest decoder cosine among them.

    .venv/bin/python benchmarks/first_token.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.features import FeatureDB  # noqa: E402
from monosemantic.features.schema import i32_from_blob  # noqa: E402
from monosemantic.sae import load_sae  # noqa: E402

SPECIAL = {0, 1, 2}  # SmolLM2: <|endoftext|> (separator), <|im_start|> (BOS), <|im_end|>


def artifacts(run: Path) -> dict:
    with FeatureDB(run / "features.db", readonly=True) as db:
        rows = db.conn.execute("SELECT feature_id, position, tokens, start FROM examples WHERE kind='feature' AND section='top'").fetchall()
        dense = db.conn.execute("SELECT id, density FROM features WHERE kind='feature' ORDER BY density DESC LIMIT 10").fetchall()
        n_tokens = db.meta.get("n_tokens")
    per: dict[int, list[bool]] = {}
    for fid, pos, blob, start in rows:
        tok = int(i32_from_blob(blob)[pos - start])
        per.setdefault(fid, []).append(pos == 1 or tok in SPECIAL)
    all_first = [f for f, v in per.items() if all(v)]
    W = load_sae(run / "sae").W_dec.detach().float()
    ids = [d[0] for d in dense]
    unit = W[ids] / W[ids].norm(dim=1, keepdim=True)
    cos = unit @ unit.T - 2 * torch.eye(len(ids))
    return {"run": str(run), "db_tokens": n_tokens, "live": len(per), "all_top_first_or_special": len(all_first) / max(len(per), 1),
            "top10_dense": [{"id": i, "density": round(d, 4), "first_or_special": round(sum(per.get(i, [])) / max(len(per.get(i, [])), 1), 2),
                             "max_cos_in_top10": round(float(cos[j].max()), 2)} for j, (i, d) in enumerate(dense)],
            "top10_dense_artifacts": sum(sum(per.get(i, [])) > 0.5 * len(per.get(i, [1])) for i in ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    for run in ap.parse_args().runs:
        print(json.dumps(artifacts(run)), flush=True)


if __name__ == "__main__":
    main()
