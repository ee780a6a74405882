"""The neuron baseline: scores of SAE features against scores of the MLP neurons of
the same layer (explained and scored by the same pipeline), as a table and a plot of
the score distributions with bootstrap 95 % confidence intervals, in RUN/autointerp/."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..features import FeatureDB


@dataclass
class Row:
    scorer: str  # "<scorer>/<explainer>"
    kind: str
    n: int
    mean: float
    lo: float  # bootstrap 95 % CI of the mean
    hi: float


@dataclass
class Difference:
    scorer: str
    diff: float  # mean(features) - mean(neurons)
    lo: float
    hi: float


@dataclass
class Comparison:
    rows: list[Row]
    differences: list[Difference]
    table: Path
    plot: Path | None
    json: Path


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    x = np.asarray(values, float)
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def bootstrap_diff_ci(a, b, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    d = a[rng.integers(0, a.size, (n_boot, a.size))].mean(1) - b[rng.integers(0, b.size, (n_boot, b.size))].mean(1)
    return float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))


def _scores(db: FeatureDB) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for scorer, kind, score in db.all_scores():
        out.setdefault(scorer, {}).setdefault(kind, []).append(score)
    return out


def compare_neurons(run: str | Path, plot: bool = True, n_boot: int = 2000) -> Comparison:
    with FeatureDB(run, readonly=True) as db:
        scores = _scores(db)
        out_dir = db.run_dir / "autointerp"
    if not scores:
        raise ConfigError(f"no scores in {run}: run `monosemantic explain {run}` (and with --kind neuron) first")
    rows, diffs = [], []
    for scorer, kinds in sorted(scores.items()):
        for kind in ("feature", "neuron"):
            if kinds.get(kind):
                lo, hi = bootstrap_ci(kinds[kind], n_boot)
                rows.append(Row(scorer, kind, len(kinds[kind]), float(np.mean(kinds[kind])), lo, hi))
        if kinds.get("feature") and kinds.get("neuron"):
            lo, hi = bootstrap_diff_ci(kinds["feature"], kinds["neuron"], n_boot)
            diffs.append(Difference(scorer, float(np.mean(kinds["feature"]) - np.mean(kinds["neuron"])), lo, hi))
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["| scorer / explainer | kind | n | mean | 95 % CI |", "|---|---|---:|---:|---|"]
    lines += [f"| {r.scorer} | {r.kind} | {r.n} | {r.mean:.3f} | [{r.lo:.3f}, {r.hi:.3f}] |" for r in rows]
    if diffs:
        lines += ["", "| scorer / explainer | features − neurons | 95 % CI |", "|---|---:|---|"]
        lines += [f"| {d.scorer} | {d.diff:+.3f} | [{d.lo:+.3f}, {d.hi:+.3f}] |" for d in diffs]
    table = out_dir / "compare_neurons.md"
    table.write_text("\n".join(lines) + "\n")
    js = out_dir / "compare_neurons.json"
    js.write_text(json.dumps({"rows": [asdict(r) for r in rows], "differences": [asdict(d) for d in diffs]}, indent=1))
    png = _plot(scores, rows, out_dir / "compare_neurons.png") if plot else None
    return Comparison(rows, diffs, table, png, js)


SCALES = {"rubric": (-0.1, 3.1), "detection": (-0.02, 1.02), "fuzzing": (-0.02, 1.02), "simulation": (-1.02, 1.02)}


def _plot(scores: dict, rows: list[Row], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(scores)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), squeeze=False)
    colours = {"feature": "tab:blue", "neuron": "tab:orange"}
    for ax, name in zip(axes[0], names):
        for i, kind in enumerate(("feature", "neuron")):
            vals = scores[name].get(kind)
            if not vals:
                continue
            jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(vals))
            ax.scatter(i + jitter, vals, s=8, alpha=0.4, color=colours[kind])
            row = next(r for r in rows if r.scorer == name and r.kind == kind)
            ax.errorbar(i + 0.3, row.mean, yerr=[[row.mean - row.lo], [row.hi - row.mean]], fmt="o", color="black", capsize=4)
        n = {k: len(scores[name].get(k) or []) for k in ("feature", "neuron")}
        ax.set_xticks([0, 1], [f"SAE features\nn={n['feature']}", f"neurons\nn={n['neuron']}"])
        ax.set_xlim(-0.5, 1.6)
        ax.set_ylim(*SCALES.get(name.split("/")[0], (None, None)))  # the scorer's whole range
        ax.set_title(name, fontsize=9)
    fig.suptitle("autointerp scores (mean, bootstrap 95 % CI)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
