"""Neuron-to-Graph (Foote et al. 2023, "Neuron to Graph: Interpreting Language Model
Neurons at Scale"; used by Gao et al. 2024, "Scaling and evaluating sparse
autoencoders", to compare latents across SAE sizes), needing no LLM.

From a unit's top explain-side activations:
1. prune: keep the shortest suffix of the context ending at the activating token that
   still gives >= `keep` of the activation (BOS-like token first, as in harvest);
2. saliency: replace each earlier token of that suffix by the model's own likeliest
   alternatives there; a token whose replacements keep the activation is a wildcard;
3. the patterns (activating token, then the important tokens before it, wildcards
   between) form the graph; it predicts the unit fires at a held-out token when a
   pattern matches the text ending there.
Scored by precision and recall (and F1) of those predictions against where the unit
really fires on the score side. No prediction at all has precision 0."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..shortseq import alternatives, last_position, substituted
from ..units import Units, firing
from ...token_text import text_of, token_texts

Pattern = tuple  # token ids from the activating token backwards; None = any token


@dataclass(frozen=True)
class N2GConfig:
    n_examples: int = 4  # top explain-side activations (one per context) the graph is built from
    max_context: int = 4  # tokens of context tried when pruning, the activating one included
    keep: float = 0.5  # a pruned or substituted context "keeps" the activation at >= keep x the original
    n_alternatives: int = 2  # substitutes tried per context token


@dataclass
class N2GResult:
    patterns: list[Pattern]
    precision: float
    recall: float
    f1: float
    n_fire: int  # held-out tokens where the unit fires
    n_pred: int  # held-out tokens the graph predicts


def top_examples(acts: torch.Tensor, mask: torch.Tensor, threshold: float, n: int) -> list[tuple[int, int, float]]:
    """(row, position, activation) of the n strongest firing tokens under mask, one per row."""
    a = torch.where(mask, acts, torch.full_like(acts, -float("inf")))
    best, pos = a.max(1)
    order = torch.argsort(best, descending=True)[:n]
    return [(int(r), int(pos[r]), float(best[r])) for r in order if firing(best[r], threshold)]


def match(patterns: list[Pattern], ids: torch.Tensor) -> torch.Tensor:
    """[N, T] bool: some pattern matches the tokens ending at each position (a pattern
    never reaches position 0, the BOS-like token)."""
    out = torch.zeros(ids.shape, dtype=torch.bool)
    T = ids.shape[1]
    for pattern in patterns:
        m = ids == pattern[0]
        for j, tok in enumerate(pattern[1:], start=1):
            if j >= T - 1:
                m[:] = False
                break
            m[:, : j + 1] = False
            if tok is not None:
                m[:, j:] &= ids[:, :-j] == tok
        out |= m
    return out


def precision_recall(pred: torch.Tensor, fires: torch.Tensor, mask: torch.Tensor) -> tuple[float, float, float, int, int]:
    pred, fires = pred & mask, fires & mask
    tp = int((pred & fires).sum())
    n_pred, n_fire = int(pred.sum()), int(fires.sum())
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_fire if n_fire else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1, n_fire, n_pred


def build_patterns(forward, lm, units: Units, examples: list[list[tuple[int, int, float]]], ids: torch.Tensor,
                   cfg: N2GConfig, reference: bool = False) -> list[list[Pattern]]:
    """One list of patterns per unit; examples[u] = its (row, position, activation).
    reference: every sequence run from scratch (the plain path the fast one is held to)."""
    bos = lm.bos_id
    jobs = [(u, r, p, a) for u, ex in enumerate(examples) for r, p, a in ex]
    windows = [ids[r, max(1, p - cfg.max_context + 1) : p + 1].tolist() for _, r, p, _ in jobs]
    # 1. pruning: every suffix length at once
    seqs, owner = [], []
    for j, w in enumerate(windows):
        for k in range(1, len(w) + 1):
            seqs.append([bos] + w[-k:])
            owner.append((j, k))
    acts = _acts_of(forward, units, seqs, [jobs[j][0] for j, _ in owner], dedupe=not reference)
    by_job: dict[int, dict[int, float]] = {}
    for (j, k), a in zip(owner, acts.tolist()):
        by_job.setdefault(j, {})[k] = a
    kept = [min((k for k, a in by_job[j].items() if a >= cfg.keep * jobs[j][3]), default=len(w)) for j, w in enumerate(windows)]
    pruned = [w[-k:] for w, k in zip(windows, kept)]
    # 2. saliency of each earlier token, by the model's own alternatives there
    bases = [[bos] + w for w in pruned]
    if reference:
        alts, subst = alternatives(lm, bases, cfg.n_alternatives), None
    else:  # the same sequences, their shared prefixes run once
        alts, *subst = substituted(forward, lm, bases, cfg.n_alternatives)
    seqs, owner = [], []
    for j, w in enumerate(pruned):
        for pos in range(len(w) - 1):
            for alt in alts[j][pos][: cfg.n_alternatives]:
                s = list(w)
                s[pos] = alt
                seqs.append([bos] + s)
                owner.append((j, pos))
    base = [by_job[j][k] for j, k in enumerate(kept)]  # the pruned context's own activation
    sub = _acts_of(forward, units, seqs, [jobs[j][0] for j, _ in owner], states=subst)
    drops: dict[tuple[int, int], list[float]] = {}
    for (j, pos), a in zip(owner, sub.tolist()):
        drops.setdefault((j, pos), []).append(a)
    out: list[list[Pattern]] = [[] for _ in examples]
    for j, w in enumerate(pruned):
        ref = max(float(base[j]), 1e-12)
        important = [sum(drops.get((j, pos), [ref])) / len(drops.get((j, pos), [ref])) < cfg.keep * ref for pos in range(len(w) - 1)]
        back = [w[-1]] + [w[pos] if important[pos] else None for pos in range(len(w) - 2, -1, -1)]
        while back and back[-1] is None:
            back.pop()
        pattern = tuple(back)
        if pattern not in out[jobs[j][0]]:
            out[jobs[j][0]].append(pattern)
    return out


def _acts_of(forward, units: Units, seqs: list[list[int]], which: list[int], dedupe: bool = False,
             states: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Activation of unit which[i] at the last token of seqs[i]; `states` = (residual,
    neurons) there when already computed; dedupe: run each distinct sequence once
    (units of a chunk share contexts: 8 % of the pruning sequences repeat)."""
    if not seqs:
        return torch.zeros(0)
    if states is not None:
        resid, neurons = states
    elif dedupe:
        index: dict[tuple, int] = {}
        slot = [index.setdefault(tuple(s), len(index)) for s in seqs]
        resid, neurons = last_position(forward, [list(s) for s in index])
        resid, neurons = resid[slot], neurons[slot]
    else:
        resid, neurons = last_position(forward, seqs)
    out = torch.empty(len(seqs))
    for i in range(0, len(seqs), 512):
        a = units.acts(resid[i : i + 512], neurons[i : i + 512])  # [b, n]
        out[i : i + 512] = a.gather(1, torch.tensor(which[i : i + 512])[:, None])[:, 0]
    return out


def score(patterns: list[Pattern], ids: torch.Tensor, fires: torch.Tensor, mask: torch.Tensor) -> N2GResult:
    p, r, f1, n_fire, n_pred = precision_recall(match(patterns, ids), fires, mask)
    return N2GResult(patterns, p, r, f1, n_fire, n_pred)


def describe(patterns: list[Pattern], pieces) -> str:
    """`of … [[ Paris]] | [[ London]]`: context tokens, … for wildcards, the activating
    token in [[ ]]. `pieces(ids)` gives the tokens' bytes (token_text.token_pieces):
    each run of adjacent tokens is decoded together, so a character split across
    tokens shows whole (the [[ ]] then holds the tokens from the one it starts in)."""
    parts = []
    for pattern in patterns:
        toks = list(reversed(pattern))  # context first, the activating token last
        runs, run = [], []
        for t in toks:
            if t is None:
                runs.append(run)
                runs.append(None)
                run = []
            else:
                run.append(int(t))
        texts = token_texts(pieces(run))
        head = len(run) - 1
        while head > 0 and texts[head] == "":  # the activating token only continues a character
            head -= 1
        shown = ["…" if r is None else text_of(pieces(r)) for r in runs]
        parts.append("".join(shown) + "".join(texts[:head]) + "[[" + "".join(texts[head:]) + "]]")
    return " | ".join(parts)
