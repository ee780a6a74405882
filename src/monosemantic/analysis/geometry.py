"""`monosemantic analyze geometry FAMILY`: the family's decoder geometry, as in the
paper's feature neighbourhoods and UMAP maps.

Writes FAMILY/analysis/geometry/:
  geometry.json            settings, neighbourhood summary, clusters, what it cost
  map.json                 every map point (member, feature id, x, y, label): the web map
  umap.png                 the map, coloured by member, largest clusters named
  neighbours/<member>.npz  per feature: nearest decoder directions in its own member
                           (`self_ids`, `self_cos`) and in each other (`<other>_ids`, ...)

Every member needs its features.db (labels, and which features are alive: dead ones,
that never fired on the streamed tokens, are left off the map)."""

from __future__ import annotations

import argparse
import io
import resource
import time
from collections import Counter
from pathlib import Path

NAME = "geometry"
DEFAULTS = {"n_neighbors": 15, "min_dist": 0.1, "clusters": 40, "seed": 0, "neighbours": 10}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-neighbors", type=int, default=DEFAULTS["n_neighbors"], help="UMAP neighbourhood size (default 15)")
    parser.add_argument("--min-dist", type=float, default=DEFAULTS["min_dist"], help="UMAP min_dist (default 0.1)")
    parser.add_argument("--clusters", type=int, default=DEFAULTS["clusters"], help="regions of the map to name (default 40)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="UMAP and k-means seed (default 0)")
    parser.add_argument("--neighbours", type=int, default=DEFAULTS["neighbours"], help="nearest directions kept per feature (default 10)")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


class MemberData:
    """One member's decoder directions [n, d], alive mask, per-feature top tokens and labels."""

    def __init__(self, run, progress: bool = False):
        from ..errors import ConfigError
        from ..features import FeatureDB, FeatureDBError

        import numpy as np

        self.name, self.run = run.dir.name, run
        self.directions = run.sae().W_dec.detach().float()  # [n, d] raw units
        n = self.directions.shape[0]
        try:
            db = FeatureDB(run.dir, readonly=True)
        except FeatureDBError as e:
            raise ConfigError(f"{e}: the map labels features from it (docs/analysis.md)") from None
        with db:
            if int(db.meta.get("n_features", -1)) != n:
                raise ConfigError(f"{run.dir}/features.db holds {db.meta.get('n_features')} features but the SAE has {n}: "
                                  f"rebuild it with `monosemantic features {run.dir} --force`")
            self.alive = np.asarray(db.densities()) > 0
            peaks = db.peak_tokens()
            alive_ids = np.nonzero(self.alive)[0].tolist()
            explanations = db.explanations_of(alive_ids)
            self.tokens = {f: [db.decode([t])[0] for t in peaks.get(f, [])] for f in alive_ids}
        self.labels = {}
        for f in alive_ids:
            top = [t for t, _ in Counter(t for t in self.tokens[f] if t.strip()).most_common(5)]
            self.labels[f] = explanations.get(f) or ("top tokens: " + ", ".join(repr(t) for t in top) if top else "(no top tokens)")


def run(target: str | Path, out_dir: str | Path | None = None, progress: bool = True, **opts) -> dict:
    import numpy as np

    from .. import atomic
    from ..errors import ConfigError
    from ..progress import progress_bar
    from .family import open_family
    from .geometry_plot import plot_map
    from .map2d import as_unit_numpy, kmeans_clusters, label_clusters, neighbour_summary, neighbourhoods, umap_2d
    from .registry import output_dir

    o = {**DEFAULTS, **{k: v for k, v in opts.items() if v is not None}}
    family = open_family(target)
    for m in family.members:   # before any work: the labels and alive features come from each member's database
        if not m.features_db_path.is_file():
            raise ConfigError(f"{m.dir} has no features.db: run `monosemantic features {m.dir}` first "
                              "(--tokens N bounds its cost; docs/analysis.md)")
    out = Path(out_dir) if out_dir else output_dir(family.dir, NAME)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    members = [MemberData(m) for m in progress_bar(family.members, desc="read members", enabled=progress)]
    seconds["read members"] = time.perf_counter() - t

    t = time.perf_counter()
    nb = neighbourhoods({m.name: m.directions for m in members}, k=o["neighbours"])
    for m in members:
        arrays = {}
        for other, n in nb[m.name].items():
            key = "self" if other == m.name else other
            arrays[f"{key}_ids"], arrays[f"{key}_cos"] = n.ids, n.cos
        atomic.write_with(out / "neighbours" / f"{m.name}.npz", lambda tmp, a=arrays: _savez(tmp, a))
    summary = neighbour_summary(nb, {m.name: m.alive for m in members})
    seconds["neighbourhoods"] = time.perf_counter() - t

    ids = [np.nonzero(m.alive)[0] for m in members]
    units = np.concatenate([as_unit_numpy(m.directions[i]) for m, i in zip(members, ids)])  # [n_alive, d]
    member_of = np.concatenate([np.full(len(i), k, np.int32) for k, i in enumerate(ids)])
    feature_of = np.concatenate(ids).astype(np.int64)
    t = time.perf_counter()
    rss_before = peak_rss_mb()
    xy = umap_2d(units, o["n_neighbors"], o["min_dist"], o["seed"])
    seconds["umap"] = time.perf_counter() - t

    t = time.perf_counter()
    assign = kmeans_clusters(xy, o["clusters"], o["seed"])
    names = [m.name for m in members]
    point_tokens = [members[k].tokens[int(f)] for k, f in zip(member_of, feature_of)]
    clusters = label_clusters(assign, xy, point_tokens, [names[k] for k in member_of])
    labels = [members[k].labels[int(f)] for k, f in zip(member_of, feature_of)]
    atomic.write_json(out / "map.json", {
        "members": [{"name": m.name, "n_latents": int(m.directions.shape[0]), "alive": int(m.alive.sum())} for m in members],
        "points": {"member": member_of.tolist(), "id": feature_of.tolist(), "x": np.round(xy[:, 0], 4).tolist(),
                   "y": np.round(xy[:, 1], 4).tolist(), "cluster": assign.tolist(), "label": labels},
        "clusters": [c._asdict() for c in clusters],
    })
    plot_map(xy, member_of, names, clusters, out / "umap.png")
    seconds["clusters, labels, figure"] = time.perf_counter() - t
    result = {
        "family": str(family.dir), "members": names, "sizes": family.sizes, "points": int(len(xy)),
        "dead_left_off": {m.name: int((~m.alive).sum()) for m in members}, "settings": o,
        "neighbourhoods": summary, "clusters": [c._asdict() for c in clusters],
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "peak_rss_mb": {"before umap": round(rss_before, 1), "after umap (process peak)": round(peak_rss_mb(), 1)},
    }
    atomic.write_json(out / "geometry.json", result)
    largest = names[-1]
    return {
        "points on the map": f"{len(xy):,} decoder directions of {', '.join(names)} (dead left off: {result['dead_left_off']})",
        "found again": "; ".join(f"{a} in {largest}: {summary[a][largest]['found_at_0.7']:.1%} have a direction at cos ≥ 0.7"
                                 for a in names[:-1]),
        "largest clusters": "; ".join(f"{c.label} ({c.size})" for c in clusters[:5]),
        "cost": f"{sum(seconds.values()):.0f} s (UMAP {seconds['umap']:.0f} s), peak memory {peak_rss_mb():,.0f} MB",
        "written": f"{out}/geometry.json, map.json, umap.png, neighbours/ (browse: monosemantic serve {family.members[-1].dir})",
    }


def _savez(path: Path, arrays: dict) -> None:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
