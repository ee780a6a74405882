"""Features against the other units: every scorer's scores of SAE features, MLP
neurons of the same layer and the direction baselines (scored by the same pipeline),
as a table and a plot of the score distributions with bootstrap 95 % confidence
intervals, in RUN/autointerp/compare.{md,json,png}."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import atomic
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
    diff: float  # mean(features) - mean(other kind)
    lo: float
    hi: float
    other: str = "neuron"


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


KIND_ORDER = ("feature", "neuron", "residual", "pca", "random")
NAMES = "compare"  # RUN/autointerp/compare.{md,json,png}
PLURAL = {"feature": "features", "neuron": "neurons", "residual": "residual dims", "pca": "PCA dirs", "random": "random dirs"}


def compare_units(run: str | Path, plot: bool = True, n_boot: int = 2000) -> Comparison:
    """Every scorer's mean per kind of unit with its bootstrap 95 % CI, and the
    difference SAE features − each other kind with its CI; units with no score say why
    (counted per reason, never averaged in). Probing results, when there, follow."""
    with FeatureDB(run, readonly=True) as db:
        scores: dict[str, dict[str, list[float]]] = {}
        for scorer, kind, score in db.all_scores():
            scores.setdefault(scorer, {}).setdefault(kind, []).append(score)
        unscored = db.unscored_counts()
        out_dir = db.run_dir / "autointerp"
    if not scores:
        raise ConfigError(f"no scores in {run}: run `monosemantic interpret {run}` first")
    rows, diffs = [], []
    for scorer, kinds in sorted(scores.items()):
        for kind in KIND_ORDER:
            if kinds.get(kind):
                lo, hi = bootstrap_ci(kinds[kind], n_boot)
                rows.append(Row(scorer, kind, len(kinds[kind]), float(np.mean(kinds[kind])), lo, hi))
        for other in KIND_ORDER[1:]:
            if kinds.get("feature") and kinds.get(other):
                lo, hi = bootstrap_diff_ci(kinds["feature"], kinds[other], n_boot)
                diffs.append(Difference(scorer, float(np.mean(kinds["feature"]) - np.mean(kinds[other])), lo, hi, other))
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = lambda s, k: ", ".join(f"{n} {r}" for r, n in sorted(unscored.get(s, {}).get(k, {}).items()))  # noqa: E731
    lines = ["| scorer | kind | n | mean | 95 % CI | not scored |", "|---|---|---:|---:|---|---|"]
    lines += [f"| {r.scorer} | {r.kind} | {r.n} | {r.mean:.3f} | [{r.lo:.3f}, {r.hi:.3f}] | {missing(r.scorer, r.kind)} |" for r in rows]
    if diffs:
        lines += ["", "| scorer | features − | difference | 95 % CI | separates |", "|---|---|---:|---|---|"]
        lines += [f"| {d.scorer} | {PLURAL[d.other]} | {d.diff:+.3f} | [{d.lo:+.3f}, {d.hi:+.3f}] | "
                  f"{'yes' if d.lo > 0 or d.hi < 0 else 'no'} |" for d in diffs]
    probing_path = out_dir / "probing.json"
    probing = json.loads(probing_path.read_text()) if probing_path.is_file() else None
    if probing:
        lines += ["", probing_table(probing)]
    table = out_dir / f"{NAMES}.md"
    atomic.write_bytes(table, ("\n".join(lines) + "\n").encode())
    js = out_dir / f"{NAMES}.json"
    atomic.write_json(js, {"rows": [asdict(r) for r in rows], "differences": [asdict(d) for d in diffs], "unscored": unscored})
    png = _plot(scores, rows, out_dir / f"{NAMES}.png") if plot else None
    return Comparison(rows, diffs, table, png, js)


def probing_table(probing: dict) -> str:
    """Mean test accuracy over the binary tasks, per family and k."""
    summary = probing["summary"]
    ks = sorted({int(k) for fam in summary.values() for k in fam})
    lines = [f"k-sparse probing: mean test accuracy over {len(probing['tasks'])} tasks (balanced, chance 0.5)", "",
             "| units | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for fam in KIND_ORDER:
        if fam in summary:
            lines.append(f"| {fam} | " + " | ".join(f"{summary[fam][str(k)]['mean']:.3f}" for k in ks) + " |")
    return "\n".join(lines)


SCALES = {"rubric": (-0.1, 3.1), "detection": (-0.02, 1.02), "fuzzing": (-0.02, 1.02), "simulation": (-1.02, 1.02),
          "n2g": (-0.02, 1.02), "embedding": (-0.02, 1.02), "ablation": (-0.02, 1.02)}


def _plot(scores: dict, rows: list[Row], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(scores)
    cols = min(len(names), 6)
    n_rows = -(-len(names) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.0 * cols, 3.4 * n_rows), squeeze=False)
    colours = dict(zip(KIND_ORDER, ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:grey")))
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        kinds = [k for k in KIND_ORDER if scores[name].get(k)]
        for i, kind in enumerate(kinds):
            vals = scores[name][kind]
            jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(vals))
            ax.scatter(i + jitter, vals, s=6, alpha=0.3, color=colours[kind])
            row = next(r for r in rows if r.scorer == name and r.kind == kind)
            ax.errorbar(i + 0.3, row.mean, yerr=[[row.mean - row.lo], [row.hi - row.mean]], fmt="o", color="black", capsize=4)
        ax.set_xticks(range(len(kinds)), [f"{k}s\nn={len(scores[name][k])}" for k in kinds], fontsize=7)
        ax.set_xlim(-0.5, len(kinds) - 0.4)
        ax.set_ylim(*SCALES.get(name.split("/")[0].split("_")[0], (None, None)))  # the scorer's whole range
        ax.set_title(name, fontsize=9)
    fig.suptitle("interpretability scores per unit (mean, bootstrap 95 % CI)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
