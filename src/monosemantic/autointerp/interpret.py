"""`interpret_run`: the offline interpretability scorers (N2G, example embeddings,
ablation sparsity, k-sparse probing) on a seeded random sample of live SAE features,
of MLP neurons and, on request, of the baselines (residual dimensions, PCA and random
directions), all read off one forward of the same text (pool.py).

Per-unit scores and N2G explanations go into RUN/features.db a chunk of units at a
time (one transaction each), so a killed run resumes with the unfinished units;
probing results go to RUN/autointerp/probing.json. A unit that never fires on the
held-out text is recorded as such for every scorer, never scored 0."""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .. import atomic
from ..errors import ConfigError
from ..features import FeatureDB
from ..token_text import token_pieces
from .pool import Pool, PoolConfig, UnitForward, build_pool, cached_pool, doc_sources
from .scorers import ablation, embedding, n2g
from .units import UNIT_KINDS, Units, fit_thresholds, make_units, sample_ids

OFFLINE_SCORERS = ("n2g_precision", "n2g_recall", "n2g_f1", "embedding_auroc", "embedding_intruder", "ablation_sparsity")
DONE_KEY = "n2g_f1"  # written in the same transaction as every other score of the unit
MIN_LIVE = 20
NO_HELDOUT = "no held-out activations"


@dataclass(frozen=True)
class InterpretConfig:
    units: dict = field(default_factory=lambda: {"feature": 200, "neuron": 200})  # kind -> sample size
    seed: int = 0
    max_density: float = 0.02  # a unit fires on at most its top 2 % of explain-side tokens (units.py)
    chunk: int = 25  # units of one kind scored and written per transaction
    probing: bool = True
    pool: PoolConfig = field(default_factory=PoolConfig)
    n2g: n2g.N2GConfig = field(default_factory=n2g.N2GConfig)
    embedding: embedding.EmbeddingConfig = field(default_factory=embedding.EmbeddingConfig)
    ablation: ablation.AblationConfig = field(default_factory=ablation.AblationConfig)
    reference: bool = False  # the plain path (no shared prefixes, full SAE encode): same scores, slower (benchmarks/interpret.py)


@dataclass
class InterpretResult:
    run: str
    selected: dict  # kind -> ids
    scored: dict  # kind -> units scored now
    skipped: dict  # kind -> units already in the database
    seconds: dict = field(default_factory=dict)  # stage -> seconds
    scorer_seconds: dict = field(default_factory=dict)  # scorer -> seconds over the units scored now
    per_unit_seconds: float = 0.0


def parse_units(spec: str) -> dict[str, int]:
    """'feature:200,neuron:200,pca:50' -> {kind: n}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, n = part.partition(":")
        if kind not in UNIT_KINDS:
            raise ConfigError(f"--units {spec!r}: unknown kind {kind!r} (use {', '.join(UNIT_KINDS)})")
        try:
            out[kind] = int(n)
        except ValueError:
            raise ConfigError(f"--units {spec!r}: write kind:N, e.g. feature:200,neuron:200") from None
        if out[kind] < 1:
            raise ConfigError(f"--units {spec!r}: N must be at least 1")
    if not out:
        raise ConfigError("--units names no units: e.g. feature:200,neuron:200")
    return out


def _live(db: FeatureDB, kind: str) -> list[int]:
    return [r.id for r in db.list(kind=kind, sort="id", descending=False, live_only=True, limit=None)]


def select_units(db: FeatureDB, cfg: InterpretConfig) -> dict[str, list[int]]:
    run = db.run_dir
    if "neuron" in cfg.units and not db.meta.get("n_neurons"):
        raise ConfigError(f"{db.path} has no neurons: run `monosemantic features {run} --neurons --force` first")
    live = _live(db, "feature")
    if len(live) < MIN_LIVE:
        raise ConfigError(f"{db.path} has only {len(live)} live features ({MIN_LIVE} needed): train the SAE longer "
                          f"(`monosemantic train {run} --resume`) or with a lower --l1, then `monosemantic features {run} --neurons --force`")
    d = int(db.meta["d_model"])
    out = {}
    for i, (kind, n) in enumerate(cfg.units.items()):
        pool = live if kind == "feature" else _live(db, "neuron") if kind == "neuron" else list(range(d))
        out[kind] = sample_ids(pool, n, cfg.seed + i)
    return out


def _load(run_dir: Path, dtype: str, lm, sae, tokens, sources):
    """The run's model, SAE, tokens and document sources (through its Run), for whichever were not given."""
    from ..run import Run

    run = Run.of(run_dir)
    lm = lm if lm is not None else run.load_model(dtype=dtype)
    sae = sae if sae is not None else run.sae().eval()
    tokens = tokens if tokens is not None else run.tokens()
    return lm, sae, tokens, sources if sources is not None else doc_sources(run.data_root)


def _unit_records(kind: str, units: Units, pool: Pool, lm, forward, chunks, cfg: InterpretConfig, decode, timing: dict):
    """Score one chunk of units; returns [(id, scores {key: (value, details)}, unscored {key: reason}, explanation)]
    and adds each scorer's seconds to `timing`."""
    t0 = time.perf_counter()
    acts = units.acts(pool.resid, pool.neurons) * pool.valid[..., None]  # [N, T, n]
    fit_thresholds(units, acts[pool.explain_valid])
    fires = units.fires(acts) & pool.valid[..., None]
    examples = [n2g.top_examples(acts[..., u], pool.explain_valid, float(units.threshold[u]), cfg.n2g.n_examples)
                for u in range(len(units))]
    t1 = time.perf_counter()
    timing["activations"] = timing.get("activations", 0.0) + t1 - t0
    patterns = n2g.build_patterns(forward, lm, units, examples, pool.ids, cfg.n2g, reference=cfg.reference)
    n2g_scores = [n2g.score(patterns[u], pool.ids, fires[..., u], pool.score_valid) for u in range(len(units))]
    t2 = time.perf_counter()
    timing["n2g"] = timing.get("n2g", 0.0) + t2 - t1
    c_acts = embedding.chunk_acts(chunks, acts)  # [C, n]
    emb = [embedding.score_unit(chunks, c_acts[:, u], float(units.threshold[u]), cfg.embedding, cfg.seed + uid)
           for u, uid in enumerate(units.ids)]
    t3 = time.perf_counter()
    timing["embedding"] = timing.get("embedding", 0.0) + t3 - t2
    # ablation at each unit's strongest held-out token
    score_acts = torch.where(pool.score_valid[..., None], acts, torch.full_like(acts, -float("inf")))
    seqs, which = [], []
    for u in range(len(units)):
        flat = int(score_acts[..., u].argmax())
        r, p = divmod(flat, acts.shape[1])
        seqs.append([lm.bos_id] + pool.ids[r, max(1, p - cfg.ablation.window + 1) : p + 1].tolist())
        which.append(u)
    abl = ablation.ablation_sparsity(lm, forward.layer, units, seqs, which, cfg.ablation, forward.neuron_module, cfg.reference)
    timing["ablation"] = timing.get("ablation", 0.0) + time.perf_counter() - t3
    out = []
    for u, uid in enumerate(units.ids):
        common = {"threshold": float(units.threshold[u]), "n_examples": len(examples[u])}
        if not bool(fires[..., u][pool.score_valid].any()):
            out.append((uid, {}, {k: NO_HELDOUT for k in OFFLINE_SCORERS}, None))
            continue
        scores, unscored = {}, {}
        res = n2g_scores[u]
        det = {**common, "n_fire": res.n_fire, "n_pred": res.n_pred, "patterns": [list(p) for p in res.patterns]}
        if examples[u]:
            scores.update({"n2g_precision": (res.precision, det), "n2g_recall": (res.recall, det), "n2g_f1": (res.f1, det)})
        else:
            unscored.update({k: "no explain-side activations" for k in ("n2g_precision", "n2g_recall", "n2g_f1")})
        e = emb[u]
        if "status" in e:
            unscored.update({"embedding_auroc": e["status"], "embedding_intruder": e["status"]})
        else:
            scores["embedding_auroc"] = (e["auroc"], {**common, **{k: v for k, v in e.items() if k.startswith("n_")}})
            if "intruder" in e:
                scores["embedding_intruder"] = (e["intruder"], {**common, "trials": cfg.embedding.n_intruder_trials})
            else:
                unscored["embedding_intruder"] = e["intruder_status"]
        if "sparsity" in abl[u]:
            scores["ablation_sparsity"] = (abl[u]["sparsity"], {**common, "k_eff": abl[u]["k_eff"], "act": abl[u]["act"]})
        else:
            unscored["ablation_sparsity"] = abl[u]["status"]
        explanation = n2g.describe(patterns[u], decode) if patterns[u] else None
        out.append((uid, scores, unscored, explanation))
    return out


def interpret_run(run: str | Path, cfg: InterpretConfig | None = None, dtype: str = "float32", progress: bool = False,
                  lm=None, sae=None, tokens=None, sources: dict | None = None, embedder=None) -> InterpretResult:
    """Score cfg.units of RUN with every offline scorer; see the module docstring.
    float32 by default: in bfloat16 the logit changes of one ablation drown in rounding.
    lm, sae, tokens (activations.harvest.Tokens), sources (doc id -> corpus source)
    and embedder default to the run's own."""
    cfg = cfg or InterpretConfig()
    t_start = time.perf_counter()
    with FeatureDB(run) as db:
        run_dir = db.run_dir
        selected = select_units(db, cfg)
        done = {k: db.units_with(k, DONE_KEY) for k in selected}
        todo = {k: [i for i in ids if i not in done[k]] for k, ids in selected.items()}
        result = InterpretResult(str(run_dir), selected, {k: 0 for k in selected}, {k: len(v) - len(todo[k]) for k, v in selected.items()})
        probing_path = run_dir / "autointerp" / "probing.json"
        need_probing = cfg.probing and not probing_path.is_file()
        if not any(todo.values()) and not need_probing:
            return result
        t0 = time.perf_counter()
        lm, sae, tokens, sources = _load(run_dir, dtype, lm, sae, tokens, sources)
        layer = int(db.meta["layer"])
        key = {"pool": asdict(cfg.pool), "model": lm.name, "dtype": str(lm.dtype), "layer": layer, "tokens": tokens.digest()}
        pool = cached_pool(run_dir / "autointerp" / "pool.safetensors", key,
                           lambda: build_pool(lm, layer, tokens, sources, cfg.pool, db.meta.get("outlier_threshold"), progress))
        forward = UnitForward(lm, layer)
        decode = functools.partial(token_pieces, lm.tokenizer)  # an N2G pattern's tokens as bytes
        embedder = embedder or embedding.SentenceEmbedder()
        chunks = embedding.make_chunks(pool, lambda ids: lm.tokenizer.decode(ids, skip_special_tokens=True), embedder, cfg.embedding)
        result.seconds["pool"] = time.perf_counter() - t0
        explain_resid = pool.resid[pool.explain_valid]
        from ..features.streamer import neuron_directions

        neuron_writes = neuron_directions(forward.neuron_module)
        t0 = time.perf_counter()
        n_todo = sum(len(v) for v in todo.values())
        with tqdm(total=n_todo, desc="interpret: units", unit="unit", disable=not progress) as bar:
            # kinds take turns chunk by chunk, so a run stopped early still compares them
            rounds = max((len(v) for v in todo.values()), default=0)
            for start in range(0, rounds, cfg.chunk):
                for kind, ids in todo.items():
                    part = ids[start : start + cfg.chunk]
                    if not part:
                        continue
                    units = make_units(kind, part, explain_resid, sae=sae, neuron_writes=neuron_writes, seed=cfg.seed,
                                       reference=cfg.reference)
                    records = _unit_records(kind, units, pool, lm, forward, chunks, cfg, decode, result.scorer_seconds)
                    db.add_unit_results(kind, records, explainer="n2g")
                    result.scored[kind] += len(part)
                    bar.update(len(part))
        result.seconds["units"] = time.perf_counter() - t0
        result.per_unit_seconds = result.seconds["units"] / max(n_todo, 1)
        if need_probing:
            from .probe_run import run_probing

            t0 = time.perf_counter()
            report = run_probing(pool, sae, lm, explain_resid, cfg.seed)
            atomic.write_json(probing_path, {"config": asdict(cfg.pool), **report})
            result.seconds["probing"] = time.perf_counter() - t0
    result.seconds["total"] = time.perf_counter() - t_start
    return result
