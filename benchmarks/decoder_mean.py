"""How much of the data's mean the decoder directions carry (issue 13, item 2).

For each run: the mean cosine between decoder rows and the data mean, the mean
pairwise decoder cosine, the mean nearest-neighbour cosine, and the fraction of
random live features that promote "," (or suppress "<filename>") among their top-10
logit effects. Compare runs side by side:

    .venv/bin/python benchmarks/decoder_mean.py RUN [RUN ...] [--features 300]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from monosemantic.activations import open_store  # noqa: E402
from monosemantic.features.directions import decoder_neighbours, logit_effects  # noqa: E402
from monosemantic.models import load_model  # noqa: E402
from monosemantic.run_config import data_root  # noqa: E402
from monosemantic.sae import load_sae  # noqa: E402


@torch.no_grad()
def geometry(run: Path, lm, n_features: int, seed: int = 0) -> dict:
    store = open_store(data_root(run))
    x = store.sample(20_000, split="heldout") / store.norm_scale          # [N, d] raw units
    mean = x.mean(0)
    sae = load_sae(run / "sae")
    W = sae.W_dec.detach().float()                                          # [n, d]
    live = (sae.encode(x[:8192]) > 0).any(0)                                # [n]
    unit = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos_mean = unit @ (mean / mean.norm())                                  # [n]
    gram = unit[live] @ unit[live].T
    m = gram.shape[0]
    pairwise = (gram.sum() - gram.diagonal().sum()) / (m * (m - 1))
    _, nb_cos = decoder_neighbours(W[live], k=1)
    ids = torch.nonzero(live).squeeze(1)
    pick = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))[:n_features]]
    effects = logit_effects(W[pick], lm.final_norm, lm.unembed, k=10)
    comma = lm.tokenizer.convert_tokens_to_ids(",")
    filename = lm.tokenizer.convert_tokens_to_ids("<filename>")
    return {"run": str(run), "live": int(live.sum()), "mean_norm": float(mean.norm()), "mean_x_norm": float(x.norm(dim=1).mean()),
            "b_dec_cos_mean": float(torch.nn.functional.cosine_similarity(sae.b_dec.float(), mean, dim=0)),
            "decoder_mean_cos": float(cos_mean[live].mean()), "pairwise_cos": float(pairwise),
            "neighbour_cos": float(nb_cos.mean()),
            "comma_promoted": float((effects.top_ids == comma).any(1).float().mean()),
            "filename_suppressed": float((effects.bottom_ids == filename).any(1).float().mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--features", type=int, default=300, help="random live features for the logit-effect counts")
    args = ap.parse_args()
    lm = load_model("embedded")
    for run in args.runs:
        print(json.dumps(geometry(run, lm, args.features)), flush=True)


if __name__ == "__main__":
    main()
