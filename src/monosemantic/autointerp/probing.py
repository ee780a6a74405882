"""k-sparse probing (Gurnee et al. 2023, "Finding Neurons in a Haystack"; SAEBench,
Karvonen et al. 2025): for a binary task, choose the k units whose standardised mean
activation differs most between the classes on the training split, fit a logistic
regression on those k alone, report its test accuracy on balanced classes.

Tasks are labelled from the embedded corpus itself (no hand labels): the language of
a debian-handbook chunk, code (Python standard library) vs English prose, the corpus
source, and one token-level task (is the token inside brackets of its context)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KS = (1, 2, 5, 20)
PROSE = ("python-docs", "gcide", "perl-doc", "wordnet", "fortunes")


@dataclass
class Task:
    name: str
    x_rows: np.ndarray  # indices into the family's example matrix
    y: np.ndarray  # [n] 0/1
    train: np.ndarray  # [n] bool


@dataclass
class ProbeResult:
    task: str
    family: str
    k: int
    accuracy: float
    n_train: int
    n_test: int
    units: list[int]


def select_units(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """The k columns with the largest |mean(pos) − mean(neg)| / std (train split)."""
    std = x.std(0).clamp(min=1e-6)
    diff = (x[y == 1].mean(0) - x[y == 0].mean(0)).abs() / std
    return torch.argsort(diff, descending=True)[:k]


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")
    yf = y.float()

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, yf) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def balanced(idx: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pos, neg = idx[y[idx] == 1], idx[y[idx] == 0]
    n = min(len(pos), len(neg))
    return np.sort(np.concatenate([rng.choice(pos, n, replace=False), rng.choice(neg, n, replace=False)]))


def probe(x: torch.Tensor, task: Task, family: str, ks=KS, seed: int = 0) -> list[ProbeResult]:
    """x [n_examples, n_units] of one family; one result per k."""
    rng = np.random.default_rng(seed)
    idx = np.arange(len(task.y))
    tr, te = balanced(idx[task.train], task.y, rng), balanced(idx[~task.train], task.y, rng)
    if len(tr) < 4 or len(te) < 2:
        return []
    xs = x[task.x_rows].float()
    mu, sd = xs[tr].mean(0), xs[tr].std(0).clamp(min=1e-6)
    xs = (xs - mu) / sd
    y = torch.from_numpy(task.y)
    out = []
    for k in ks:
        cols = select_units(xs[tr], y[tr], min(k, xs.shape[1]))
        w, b = fit_logistic(xs[tr][:, cols], y[tr])
        acc = float((((xs[te][:, cols] @ w + b) > 0).long() == y[te]).float().mean())
        out.append(ProbeResult(task.name, family, k, acc, len(tr), len(te), cols.tolist()))
    return out


def sequence_tasks(sources: list[str], train: np.ndarray, min_per_class: int = 8) -> list[Task]:
    """Tasks over examples labelled by corpus source (one per chunk or context)."""
    src = np.array(sources)
    tasks = []
    hb = np.array([s.startswith("debian-handbook/") for s in src])
    langs = [s for s in sorted(set(src[hb])) if (src == s).sum() >= min_per_class]
    for lang in langs:
        rows = np.nonzero(hb)[0]
        tasks.append(Task(f"language/{lang.split('/', 1)[1]}", rows, (src[rows] == lang).astype(np.int64), train[rows]))
    code, prose = src == "python-stdlib", np.isin(src, PROSE)
    rows = np.nonzero(code | prose)[0]
    if code.sum() >= min_per_class and prose.sum() >= min_per_class:
        tasks.append(Task("code_vs_prose", rows, code[rows].astype(np.int64), train[rows]))
    group = np.array(["debian-handbook" if s.startswith("debian-handbook/") else s for s in src])
    for g in sorted(set(group)):
        if (group == g).sum() >= min_per_class and (group != g).sum() >= min_per_class:
            tasks.append(Task(f"source/{g}", np.arange(len(src)), (group == g).astype(np.int64), train))
    return tasks


def inside_brackets(token_texts: list[str]) -> np.ndarray:
    """[T] 1 where a token lies inside (), [] or {} opened earlier in the same context."""
    depth, out = 0, []
    for t in token_texts:
        out.append(int(depth > 0))
        for ch in t:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(0, depth - 1)
    return np.array(out, dtype=np.int64)


def summarise(results: list[ProbeResult]) -> dict:
    """family -> k -> mean test accuracy over tasks (and the number of tasks)."""
    out: dict = {}
    for r in results:
        out.setdefault(r.family, {}).setdefault(str(r.k), []).append(r.accuracy)
    return {f: {k: {"mean": float(np.mean(v)), "n_tasks": len(v)} for k, v in ks.items()} for f, ks in out.items()}
