"""Spliced next-token loss: cross-entropy with the SAE reconstruction put in place of
the residual at layer L, against clean, zero-ablated and mean-ablated residuals, and
the KL divergence to the clean next-token distribution.

Tokens the training data leaves out (activations/valid.py: position 0 with the
BOS-like attention sink, position 1, any BOS or separator, tokens above the harvest's
outlier threshold)
keep their clean residual in every variant: the SAE never saw them, and the sink
alone would otherwise dominate the loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..activations.valid import excluded_ids, valid_tokens


@dataclass(frozen=True)
class SplicedStats:
    ce_clean: float
    ce_sae: float
    ce_zero: float
    ce_mean: float
    loss_recovered: float  # (ce_zero − ce_sae) / (ce_zero − ce_clean)
    loss_recovered_mean_ablation: float  # (ce_mean − ce_sae) / (ce_mean − ce_clean)
    kl_sae: float  # mean over tokens of KL(clean ‖ spliced), nats
    kl_zero: float
    tokens: int


def spliced_stats(
    lm,
    layer: int,
    contexts: torch.Tensor,  # [n, T] token ids, each starting with the BOS-like token
    reconstruct,  # raw residual [N, d] -> raw reconstruction [N, d]
    mean_activation: torch.Tensor,  # [d], raw units
    outlier_threshold: float | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> SplicedStats:
    return spliced_stats_many(lm, layer, contexts, [reconstruct], mean_activation, outlier_threshold, batch_size, progress)[0]


@torch.no_grad()
def spliced_stats_many(
    lm,
    layer: int,
    contexts: torch.Tensor,  # [n, T] token ids, each starting with the BOS-like token
    reconstructs: list,  # one per SAE: raw residual [N, d] -> raw reconstruction [N, d]
    mean_activation: torch.Tensor,  # [d], raw units
    outlier_threshold: float | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> list[SplicedStats]:
    """`spliced_stats` for several SAEs of one layer on the same contexts. The clean,
    zero- and mean-ablated forwards do not depend on the SAE: they run once per batch
    for all of them, so N SAEs cost 3 + N forwards per context instead of 4N (a
    family's or sweep's evals share them)."""
    from ..progress import progress_bar

    names = [f"sae{i}" for i in range(len(reconstructs))]
    sums = dict.fromkeys(("clean", "zero", "mean", "kl_zero", *names, *(f"kl_{x}" for x in names)), 0.0)
    n_tok = 0
    special = excluded_ids(lm)
    # 3 + N forwards per context (clean, zero, mean, each SAE): the bar counts forwards,
    # so a single batch of contexts still moves it.
    bar = progress_bar(total=(3 + len(names)) * contexts.shape[0], unit="fwd", desc="eval spliced loss", enabled=progress)
    for start in range(0, contexts.shape[0], batch_size):
        ids = contexts[start : start + batch_size].long()
        targets = ids[:, 1:]

        def splice(replacement):
            def fn(h: torch.Tensor) -> torch.Tensor:
                mask = valid_tokens(ids.to(h.device), exclude_ids=special, norms=h.float().norm(dim=-1),
                                    outlier_threshold=outlier_threshold)  # [B, T]
                out = h.clone()
                out[mask] = replacement(h[mask].float()).to(h.dtype)
                return out

            with lm.patch_residual(layer, fn):
                logits = lm.logits(ids)[:, :-1].float()
            bar.update(ids.shape[0])
            return logits

        clean = lm.logits(ids)[:, :-1].float()  # [B, T-1, V]
        bar.update(ids.shape[0])
        variants = {
            **{name: (lambda r=r: splice(r)) for name, r in zip(names, reconstructs)},
            "zero": lambda: splice(torch.zeros_like),
            "mean": lambda: splice(lambda x: mean_activation.to(x).expand_as(x)),
        }
        clean_logp = clean.log_softmax(-1)
        sums["clean"] += float(F.cross_entropy(clean.flatten(0, 1), targets.flatten(), reduction="sum"))
        for name, run in variants.items():
            logits = run()  # one [B, T-1, V] at a time: the vocabulary makes them large
            sums[name] += float(F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum"))
            if name != "mean":
                kl = F.kl_div(logits.log_softmax(-1), clean_logp, log_target=True, reduction="sum")
                sums[f"kl_{name}"] += float(kl)
        n_tok += targets.numel()
    bar.close()
    ce = {k: v / n_tok for k, v in sums.items()}

    def recovered(ablated: float, sae: float) -> float:
        gap = ablated - ce["clean"]
        return (ablated - sae) / gap if gap > 0 else float("nan")

    return [SplicedStats(
        ce_clean=ce["clean"], ce_sae=ce[name], ce_zero=ce["zero"], ce_mean=ce["mean"],
        loss_recovered=recovered(ce["zero"], ce[name]), loss_recovered_mean_ablation=recovered(ce["mean"], ce[name]),
        kl_sae=ce[f"kl_{name}"], kl_zero=ce["kl_zero"], tokens=n_tok,
    ) for name in names]
