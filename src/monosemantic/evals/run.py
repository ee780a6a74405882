"""Evaluate a run directory's SAE on held-out data and write RUN/eval.json."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..activations.split import is_heldout
from ..errors import StoreError
from ..run import Run
from .density import density_stats, firing_counts
from .reconstruction import reconstruction_stats
from .spliced import spliced_stats_many

EVAL_FORMAT = "monosemantic-eval/1"


def _chunks(x: torch.Tensor, size: int = 4096):
    return (x[i : i + size] for i in range(0, x.shape[0], size))


def heldout_contexts(run: Run, n: int) -> torch.Tensor:
    """The first n held-out contexts of the run's packed tokens, [n, T]."""
    tokens = run.tokens()
    ids = np.nonzero(is_heldout(np.arange(tokens.contexts.shape[0])))[0][:n]
    if len(ids) == 0:
        raise StoreError(f"{run.tokens_dir} has no held-out context to evaluate the spliced loss on")
    return torch.from_numpy(tokens.contexts[ids].astype(np.int64))


def evaluate_run(run: Run | str | Path, lm=None, sae=None, n_tokens: int = 50_000, n_contexts: int = 48, progress: bool = True) -> dict:
    """Reconstruction and density on up to `n_tokens` held-out activations; spliced
    loss on `n_contexts` held-out contexts (needs the run's model and tokens)."""
    return evaluate_runs([run], lm=lm, saes=None if sae is None else [sae], n_tokens=n_tokens, n_contexts=n_contexts,
                         progress=progress)[0]


def evaluate_runs(runs: list, lm=None, saes: list | None = None, n_tokens: int = 50_000, n_contexts: int = 48,
                  progress: bool = True) -> list[dict]:
    """`evaluate_run` for several runs (a family, a sweep), each writing its eval.json.
    Runs whose SAEs read one store at one layer share its held-out contexts, mean and
    the model's clean, zero- and mean-ablated forwards (evals/spliced.py): N SAEs cost
    3 + N forwards per context, not 4N. Each run's eval_seconds is its own part plus
    an equal share of what they shared."""
    runs = [Run.of(r) for r in runs]
    saes = saes if saes is not None else [None] * len(runs)
    parts = [_reconstruction(run, sae, n_tokens) for run, sae in zip(runs, saes)]
    groups: dict[tuple, list[int]] = {}
    for i, (run, (_, store, _)) in enumerate(zip(runs, parts)):
        if store.model is not None and run.has_tokens:
            groups.setdefault((str(Path(store.path).resolve()), run.layer, run.model_spec), []).append(i)
    models: dict = {}
    for (_, layer, spec), members in groups.items():
        start = time.perf_counter()
        run, store = runs[members[0]], parts[members[0]][1]
        group_lm = lm if lm is not None else models.get(spec) or models.setdefault(spec, run.load_model())
        contexts = heldout_contexts(run, n_contexts)
        mean = torch.from_numpy(store.gather(store.split_indices("train")[:20_000]).mean(0))
        reconstructs = [(lambda x, sae=parts[i][2]: sae.decode(sae.encode(x))) for i in members]
        with torch.no_grad():
            spliced = spliced_stats_many(group_lm, layer, contexts, reconstructs, mean,
                                         outlier_threshold=store.manifest.get("outlier_threshold"), progress=progress)
        share = (time.perf_counter() - start) / len(members)
        for i, stats in zip(members, spliced):
            result = parts[i][0]
            result.update({f"spliced_{k}": v for k, v in asdict(stats).items()})
            result["loss_recovered"] = stats.loss_recovered
            result["eval_seconds"] += share
    for run, (result, *_) in zip(runs, parts):
        atomic.write_json(run.dir / "eval.json", result)
    return [result for result, *_ in parts]


def _reconstruction(run: Run, sae, n_tokens: int):
    """-> (the run's eval result without the spliced loss, its store, its SAE)."""
    store = run.store()
    sae = sae if sae is not None else run.sae()  # raw units
    sae.eval()
    if sae.cfg.d_in != store.d:
        raise StoreError(f"the SAE in {run.dir}/sae reads width {sae.cfg.d_in} but the store {store.path} holds width "
                         f"{store.d} ({store.model}, layer {store.layer}): evaluate it on a store of its own model")
    start = time.perf_counter()
    x_raw = store.sample(n_tokens, split="heldout") / store.norm_scale  # [n, d]
    if x_raw.shape[0] == 0:
        raise StoreError(f"{run.dir} has no held-out activations")
    with torch.no_grad():
        recon = reconstruction_stats(sae, _chunks(x_raw))
        counts, n = firing_counts(sae, _chunks(x_raw))
    density = density_stats(counts, n)
    # MSE in the normalised units (E‖x‖ = √d) so that runs on different models compare.
    mse_normalised = recon.mse * store.norm_scale**2
    result = {
        "format": EVAL_FORMAT,
        "fve": recon.fve,
        "mse_normalised": mse_normalised,
        "l0": recon.l0,
        "dead_fraction": density.dead_fraction,
        "dense_fraction": density.dense_fraction,
        "dead_window_tokens": density.window_tokens,
        "log10_density_hist": density.log10_density_hist,
        "log10_density_edges": density.log10_density_edges,
        "eval_tokens": recon.tokens,
        "n_latents": int(counts.shape[0]),
        "eval_seconds": time.perf_counter() - start,
    }
    return result, store, sae


def format_table(result: dict) -> str:
    rows = [
        ("fraction of variance explained", f"{result['fve']:.4f}"),
        ("MSE (normalised, E|x|=sqrt(d))", f"{result['mse_normalised']:.4f}"),
        ("L0 (active features per token)", f"{result['l0']:.1f}"),
        ("dead features", f"{result['dead_fraction']:.2%}  (never fired in {result['dead_window_tokens']:,} tokens)"),
        ("dense features (>10% of tokens)", f"{result['dense_fraction']:.2%}"),
    ]
    if "loss_recovered" in result:
        rows += [
            ("CE clean / SAE / zero / mean", "{:.3f} / {:.3f} / {:.3f} / {:.3f}".format(
                result["spliced_ce_clean"], result["spliced_ce_sae"], result["spliced_ce_zero"], result["spliced_ce_mean"])),
            ("loss recovered (vs zero ablation)", f"{result['loss_recovered']:.2%}"),
            ("loss recovered (vs mean ablation)", f"{result['spliced_loss_recovered_mean_ablation']:.2%}"),
            ("KL(clean || SAE spliced), nats/token", f"{result['spliced_kl_sae']:.4f}"),
        ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
