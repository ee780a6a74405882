"""JumpReLU candidates against dead latents, side by side on one stream of a real store.

Every candidate is a JumpReLU config (the defaults plus some fields) trained in one
pass over the same batches (train_many), then measured on the store's held-out rows:
FVE, L0, the fraction of latents that never fire (dead) and that fire on fewer than
10⁻⁴ of the rows (rare, dead excluded). The same two fractions are also counted on a
larger sample of training rows, where 10⁻⁴ is more than one firing.

    python benchmarks/jumprelu_dead.py STORE [--tokens 1200000] [--latents 4096]
        --candidate old:jumprelu_threshold_lr_scale=10,jumprelu_centre_init=false --candidate new ...
    python benchmarks/jumprelu_dead.py STORE --measure RUN [RUN ...]   # SAEs trained by `monosemantic train`
    (docs/training.md, "JumpReLU's dead latents", has the table and the commands)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from monosemantic.activations import open_store
from monosemantic.evals.density import firing_counts
from monosemantic.evals.reconstruction import reconstruction_stats
from monosemantic.evals.run import _chunks
from monosemantic.sae.registry import config_for
from monosemantic.train import TrainConfig, TrainJob, train_many

RARE = 1e-4


def _candidate(text: str) -> tuple[str, dict]:
    """'name:field=value,field=value' (values as JSON) -> (name, fields)."""
    name, _, rest = text.partition(":")
    fields = {}
    for item in filter(None, rest.split(",")):
        key, value = item.split("=", 1)
        fields[key] = json.loads(value)
    return name, fields


def _fractions(sae, x: torch.Tensor) -> tuple[float, float]:
    counts, n = firing_counts(sae, _chunks(x))
    rate = counts.double() / n
    return float((rate == 0).double().mean()), float(((rate > 0) & (rate < RARE)).double().mean())


def _train(store, candidates: list[tuple[str, dict]], args) -> list[tuple[str, torch.nn.Module]]:
    cfg = TrainConfig(n_tokens=args.tokens, batch_size=args.batch, log_every=50, checkpoint_every=0)
    jobs = [TrainJob(config_for({"architecture": "jumprelu", "d_in": store.d, "n_latents": args.latents,
                                 "norm_scale": store.norm_scale, **fields}), cfg) for _, fields in candidates]
    start = time.perf_counter()
    stream = lambda first: store.batches(args.batch, split="train", seed=cfg.seed, start_batch=first)  # noqa: E731
    results = train_many(stream, jobs, progress=True)
    print(f"trained {len(jobs)} JumpReLU SAEs of {args.latents} latents on {args.tokens:,} tokens in one pass: "
          f"{time.perf_counter() - start:.0f} s")
    return [(name, result.sae.eval()) for (name, _), result in zip(candidates, results)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", help="an activation store directory (or a run directory holding activations/)")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME[:FIELD=VALUE,...]")
    parser.add_argument("--measure", nargs="+", default=[], metavar="RUN", help="measure these run directories' SAEs instead of training")
    parser.add_argument("--latents", type=int, default=4096)
    parser.add_argument("--tokens", type=int, default=1_200_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--train-sample", type=int, default=100_000, help="training rows to count dead/rare on as well")
    parser.add_argument("--json", default=None, help="also write the table here")
    args = parser.parse_args()
    store = open_store(args.store)
    heldout = store.sample(1 << 30, split="heldout")           # scaled, as the SAEs train
    train_rows = store.sample(args.train_sample, split="train")
    if args.measure:
        from monosemantic.run import Run

        named = [(run, Run.of(run).sae().eval()) for run in args.measure]
        scale = store.norm_scale                               # a saved SAE is in raw units
    elif args.candidate:
        named = _train(store, [_candidate(c) for c in args.candidate], args)
        scale = 1.0
    else:
        parser.error("give --candidate (to train) or --measure RUN")
    print(f"{'candidate':>24} {'FVE':>6} {'L0':>6} {'dead':>6} {'rare':>6} | {'train dead':>10} {'train rare':>10}  "
          f"(held out: {heldout.shape[0]:,} rows; train sample: {train_rows.shape[0]:,})")
    table = []
    for name, sae in named:
        with torch.no_grad():
            recon = reconstruction_stats(sae, _chunks(heldout / scale))
            dead, rare = _fractions(sae, heldout / scale)
            train_dead, train_rare = _fractions(sae, train_rows / scale)
        row = {"candidate": name, "fve": recon.fve, "l0": recon.l0, "dead": dead, "rare": rare,
               "train_dead": train_dead, "train_rare": train_rare, "heldout_rows": heldout.shape[0]}
        table.append(row)
        print(f"{name:>24} {recon.fve:6.3f} {recon.l0:6.1f} {dead:6.1%} {rare:6.1%} | {train_dead:10.1%} {train_rare:10.1%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
