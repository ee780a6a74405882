"""Reading (and annotating) `RUN/features.db`.

    db = FeatureDB("runs/x")                      # or the .db path
    f = db.get(123)                               # Feature: stats, examples, logits, neighbours
    db.list(sort="density", descending=False, min_density=1e-4, limit=50)
    db.search("Paris")                            # features that fire most on these tokens
    db.top_for_prompt("The Eiffel Tower is in")   # runs model + SAE
    db.export(123)                                # JSON-ready dict
    db.add_explanation(123, "explainer-x", "...") # for autointerp
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .schema import (
    DB_NAME, FeatureDBError, check_schema, f16_from_blob, i32_from_blob, ids_values_from_blob,
)

KINDS = ("feature", "neuron")
UNIT_KINDS = KINDS + ("residual", "pca", "random")  # what scores may be about (autointerp/units.py)
UNSCORED = """CREATE TABLE IF NOT EXISTS unscored (
    feature_id INTEGER NOT NULL, kind TEXT NOT NULL, scorer TEXT NOT NULL,
    reason TEXT NOT NULL,          -- e.g. 'no held-out activations': why there is no score
    created TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (kind, feature_id, scorer))"""
SORT_COLUMNS = {"id": "f.id", "density": "f.density", "max_act": "f.max_act", "mean_act": "f.mean_act", "count": "f.count", "score": "s.score"}


@dataclass
class Example:
    context_id: int
    position: int  # the example token, in context coordinates
    activation: float
    start: int  # context position of tokens[0]
    token_ids: list[int]
    acts: list[float]  # the feature's activation on each window token
    tokens: list[str]  # decoded window tokens


@dataclass
class Interval:
    index: int  # 0 = the octave holding the max; the last one is the tail below
    lo: float
    hi: float
    examples: list[Example]


@dataclass
class TokenEffect:
    token_id: int
    token: str
    value: float


@dataclass
class FeatureSummary:
    id: int
    kind: str
    count: int
    density: float
    max_act: float
    mean_act: float
    explanation: str | None = None
    score: float | None = None


@dataclass
class Feature(FeatureSummary):
    histogram: list[int] = field(default_factory=list)  # counts per log10 bin
    hist_log10_edges: list[float] = field(default_factory=list)
    promoted: list[TokenEffect] = field(default_factory=list)
    suppressed: list[TokenEffect] = field(default_factory=list)
    neighbours: list[tuple[int, float]] = field(default_factory=list)  # (id, decoder cosine)
    top: list[Example] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    negatives: list[Example] = field(default_factory=list)
    explanations: list[dict] = field(default_factory=list)
    scores: list[dict] = field(default_factory=list)


@dataclass
class TokenHit:
    feature_id: int
    activation: float  # the feature's highest activation on the matched token
    token_id: int
    token: str


@dataclass
class PromptFeatures:
    tokens: list[str]  # the prompt's tokens (BOS-like token first, not scored)
    top: list[tuple[int, float, int]]  # (feature id, max activation, position of the max)
    per_token: list[list[tuple[int, float]]]  # for each position, its strongest features


def _check_kind(kind: str, kinds: tuple = KINDS) -> str:
    if kind not in kinds:
        raise FeatureDBError(f"unknown kind {kind!r}: use {', '.join(repr(k) for k in kinds)}")
    return kind


class FeatureDB:
    def __init__(self, path: str | Path, lm=None, sae=None, readonly: bool = False):
        path = Path(path)
        if path.is_dir():
            path = path / DB_NAME
        if not path.is_file():
            raise FeatureDBError(f"{path} does not exist: build it with `monosemantic features {path.parent}`")
        self.path, self.lm, self.sae = path, lm, sae
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            raw = check_schema(self.conn, path)
        except BaseException:
            self.conn.close()
            raise
        self.meta = {k: (v if k in ("model", "model_spec", "created", "schema_version", "complete") else json.loads(v)) for k, v in raw.items()}
        self._vocab: dict[int, str] = {}

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "FeatureDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    # --- vocabulary ----------------------------------------------------------------
    def decode(self, token_ids) -> list[str]:
        ids = [int(i) for i in token_ids]
        missing = [i for i in set(ids) if i not in self._vocab]
        for i in range(0, len(missing), 900):
            chunk = missing[i : i + 900]
            rows = self.conn.execute(f"SELECT token_id, text FROM vocab WHERE token_id IN ({','.join('?' * len(chunk))})", chunk)
            self._vocab.update(rows.fetchall())
        return [self._vocab.get(i, f"<{i}>") for i in ids]

    # --- one feature --------------------------------------------------------------
    def _example(self, row) -> Example:
        ctx, pos, act, start, tokens, acts = row
        ids = i32_from_blob(tokens).tolist()
        return Example(int(ctx), int(pos), float(act), int(start), ids, f16_from_blob(acts).tolist(), self.decode(ids))

    def get(self, feature_id: int, kind: str = "feature") -> Feature:
        kind = _check_kind(kind)
        row = self.conn.execute(
            "SELECT id, kind, count, density, max_act, mean_act, hist, logit_top, logit_bottom, neighbours "
            "FROM features WHERE kind = ? AND id = ?", (kind, int(feature_id))).fetchone()
        if row is None:
            n = self.meta.get("n_features" if kind == "feature" else "n_neurons", 0)
            raise FeatureDBError(f"no {kind} {feature_id} in {self.path} (it holds ids 0..{n - 1})")
        fid, kind, count, density, max_act, mean_act, hist, ltop, lbottom, nbs = row
        feature = Feature(fid, kind, count, density, max_act, mean_act)
        feature.histogram = i32_from_blob(hist, compressed=True).tolist()
        feature.hist_log10_edges = self.meta["hist_log10_edges"]
        for target, blob in ((feature.promoted, ltop), (feature.suppressed, lbottom)):
            ids, vals = ids_values_from_blob(blob)
            target.extend(TokenEffect(int(i), t, float(v)) for i, t, v in zip(ids, self.decode(ids), vals))
        ids, cos = ids_values_from_blob(nbs)
        feature.neighbours = [(int(i), float(c)) for i, c in zip(ids, cos)]
        rows = self.conn.execute(
            "SELECT section, interval, lo, hi, context_id, position, activation, start, tokens, acts FROM examples "
            "WHERE kind = ? AND feature_id = ? ORDER BY section, interval, rank", (kind, fid)).fetchall()
        intervals: dict[int, Interval] = {}
        for section, interval, lo, hi, *rest in rows:
            example = self._example(rest)
            if section == "top":
                feature.top.append(example)
            elif section == "negative":
                feature.negatives.append(example)
            else:
                intervals.setdefault(interval, Interval(interval, lo, hi, [])).examples.append(example)
        feature.intervals = [intervals[i] for i in sorted(intervals)]
        feature.explanations = [dict(zip(("explainer", "text", "created"), r)) for r in self.conn.execute(
            "SELECT explainer, text, created FROM explanations WHERE kind = ? AND feature_id = ?", (kind, fid))]
        feature.scores = [{"scorer": s, "score": v, "details": json.loads(d), "created": c} for s, v, d, c in self.conn.execute(
            "SELECT scorer, score, details, created FROM scores WHERE kind = ? AND feature_id = ?", (kind, fid))]
        if feature.explanations:
            feature.explanation = feature.explanations[0]["text"]
        if feature.scores:
            feature.score = feature.scores[0]["score"]
        return feature

    def export(self, feature_id: int, kind: str = "feature") -> dict:
        """The feature as a JSON-ready dict (what `json.dumps` writes)."""
        return {"run": str(self.run_dir), "model": self.meta.get("model"), "layer": self.meta.get("layer"), **asdict(self.get(feature_id, kind))}

    def export_json(self, feature_id: int, kind: str = "feature", path: str | Path | None = None) -> str:
        text = json.dumps(self.export(feature_id, kind), indent=1)
        if path is not None:
            from .. import atomic

            atomic.write_bytes(path, text.encode())
        return text

    # --- many features --------------------------------------------------------------
    def list(
        self,
        kind: str = "feature",
        sort: str = "density",
        descending: bool = True,
        min_density: float | None = None,
        max_density: float | None = None,
        min_max_act: float | None = None,
        live_only: bool = False,
        explanation: str | None = None,
        explainer: str | None = None,
        scorer: str | None = None,
        min_score: float | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[FeatureSummary]:
        """Features sorted by `sort` (id, density, max_act, mean_act, count, score) and
        filtered; `explanation` is a case-insensitive substring of the explanation text."""
        kind = _check_kind(kind)
        if sort not in SORT_COLUMNS:
            raise FeatureDBError(f"cannot sort by {sort!r}: use one of {', '.join(SORT_COLUMNS)}")
        where, args = ["f.kind = ?"], [kind]
        for cond, value in (("f.density >= ?", min_density), ("f.density <= ?", max_density), ("f.max_act >= ?", min_max_act), ("s.score >= ?", min_score)):
            if value is not None:
                where.append(cond)
                args.append(value)
        if live_only:
            where.append("f.count > 0")
        if explanation is not None:
            where.append("e.text LIKE ?")
            args.append(f"%{explanation}%")
        if scorer is None:  # one score per row: the first scorer's (by name) unless one is named
            scorer = self.conn.execute("SELECT MIN(scorer) FROM scores WHERE kind = ?", (kind,)).fetchone()
            scorer = scorer[0] if scorer else ""
        join_e = "LEFT JOIN explanations e ON e.kind = f.kind AND e.feature_id = f.id" + (" AND e.explainer = ?" if explainer else "")
        join_s = "LEFT JOIN scores s ON s.kind = f.kind AND s.feature_id = f.id" + (" AND s.scorer = ?" if scorer else "")
        join_args = ([explainer] if explainer else []) + ([scorer] if scorer else [])
        order = f"{SORT_COLUMNS[sort]} {'DESC' if descending else 'ASC'}, f.id"
        sql = (f"SELECT f.id, f.kind, f.count, f.density, f.max_act, f.mean_act, e.text, s.score FROM features f {join_e} {join_s} "
               f"WHERE {' AND '.join(where)} GROUP BY f.id ORDER BY {order}")
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return [FeatureSummary(*row) for row in self.conn.execute(sql, join_args + args)]

    def densities(self, kind: str = "feature") -> np.ndarray:
        return np.array([r[0] for r in self.conn.execute("SELECT density FROM features WHERE kind = ? ORDER BY id", (_check_kind(kind),))])

    # --- search -----------------------------------------------------------------------
    def _text_to_ids(self, text: str) -> list[int]:
        tokenizer = getattr(self.lm, "tokenizer", None)
        if tokenizer is not None:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
        # without a tokenizer: the vocabulary entries that decode to the text (with or without a leading space)
        rows = self.conn.execute("SELECT token_id FROM vocab WHERE text IN (?, ?)", (text, " " + text.lstrip())).fetchall()
        if not rows:
            raise FeatureDBError(f"{text!r} is not one token of the vocabulary: pass lm= to FeatureDB to search phrases")
        return [r[0] for r in rows]

    def search(self, text: str, kind: str = "feature", limit: int = 20) -> list[TokenHit]:
        """Features that fire most strongly on the token(s) of `text`, from the token
        index built while streaming; a feature matched by several tokens counts once,
        with its strongest activation."""
        kind = _check_kind(kind)
        ids = self._text_to_ids(text)
        best: dict[int, TokenHit] = {}
        for tok, fid, act in self.conn.execute(
            f"SELECT token_id, feature_id, activation FROM token_index WHERE kind = ? AND token_id IN ({','.join('?' * len(ids))})",
            [kind, *ids]):
            if fid not in best or act > best[fid].activation:
                best[fid] = TokenHit(fid, act, tok, self.decode([tok])[0])
        return sorted(best.values(), key=lambda h: -h.activation)[:limit]

    def _model_and_sae(self):
        if self.lm is None:
            from ..models import load_model

            self.lm = load_model(self.meta["model_spec"])
        if self.sae is None:
            from ..sae import load_sae

            self.sae = load_sae(self.run_dir / "sae")
        return self.lm, self.sae

    def top_for_prompt(self, prompt: str, k: int = 10, per_token: int = 5) -> PromptFeatures:
        """Run the model and the SAE on `prompt` (BOS-like token prepended, as in the
        build) and return its strongest features overall and at each position."""
        import torch

        lm, sae = self._model_and_sae()
        ids = [lm.bos_id] + list(lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            resid = lm.residual(torch.tensor([ids]), int(self.meta["layer"]))[0].float()  # [T, d]
            acts = sae.encode(resid).float()  # [T, n]
        acts[0] = 0  # the attention sink position is never scored
        mx, pos = acts.max(0)
        order = torch.argsort(mx, descending=True)[:k]
        top = [(int(f), float(mx[f]), int(pos[f])) for f in order if mx[f] > 0]
        vals, idx = torch.topk(acts, min(per_token, acts.shape[1]), dim=1)
        rows = [[(int(i), float(v)) for v, i in zip(vr, ir) if v > 0] for vr, ir in zip(vals, idx)]
        return PromptFeatures(self.decode(ids), top, rows)

    # --- annotations (autointerp) ---------------------------------------------------
    def add_explanation(self, feature_id: int, explainer: str, text: str, kind: str = "feature") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO explanations (feature_id, kind, explainer, text) VALUES (?,?,?,?)",
                              (int(feature_id), _check_kind(kind, UNIT_KINDS), explainer, text))

    def add_score(self, feature_id: int, scorer: str, score: float, details: dict | None = None, kind: str = "feature") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO scores (feature_id, kind, scorer, score, details) VALUES (?,?,?,?,?)",
                              (int(feature_id), _check_kind(kind, UNIT_KINDS), scorer, float(score), json.dumps(details or {})))

    def add_unit_results(self, kind: str, records, explainer: str) -> None:
        """In one transaction, for each (unit id, {scorer: (score, details)}, {scorer:
        reason}, explanation or None): its scores, why the others are missing, and its
        explanation by `explainer`. A kill leaves each unit all written or not at all."""
        _check_kind(kind, UNIT_KINDS)
        with self.conn:
            self.conn.execute(UNSCORED)
            for uid, scores, unscored, explanation in records:
                uid = int(uid)
                for scorer in list(scores) + list(unscored):
                    self.conn.execute("DELETE FROM scores WHERE kind=? AND feature_id=? AND scorer=?", (kind, uid, scorer))
                    self.conn.execute("DELETE FROM unscored WHERE kind=? AND feature_id=? AND scorer=?", (kind, uid, scorer))
                self.conn.executemany("INSERT INTO scores (feature_id, kind, scorer, score, details) VALUES (?,?,?,?,?)",
                                      [(uid, kind, k, float(v), json.dumps(d)) for k, (v, d) in scores.items()])
                self.conn.executemany("INSERT INTO unscored (feature_id, kind, scorer, reason) VALUES (?,?,?,?)",
                                      [(uid, kind, k, r) for k, r in unscored.items()])
                if explanation is not None:
                    self.conn.execute("INSERT OR REPLACE INTO explanations (feature_id, kind, explainer, text) VALUES (?,?,?,?)",
                                      (uid, kind, explainer, explanation))

    def _has_unscored(self) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'unscored'").fetchone() is not None

    def units_with(self, kind: str, scorer: str) -> set[int]:
        """Ids of `kind` with a score or a recorded reason for none under `scorer`."""
        ids = {r[0] for r in self.conn.execute("SELECT feature_id FROM scores WHERE kind=? AND scorer=?", (kind, scorer))}
        if self._has_unscored():
            ids |= {r[0] for r in self.conn.execute("SELECT feature_id FROM unscored WHERE kind=? AND scorer=?", (kind, scorer))}
        return ids

    def all_scores(self) -> dict[str, dict[str, list[float]]]:
        """scorer -> kind -> scores (in unit id order)."""
        out: dict[str, dict[str, list[float]]] = {}
        for scorer, kind, score in self.conn.execute("SELECT scorer, kind, score FROM scores ORDER BY scorer, kind, feature_id"):
            out.setdefault(scorer, {}).setdefault(kind, []).append(score)
        return out

    def unscored_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """scorer -> kind -> reason -> units without a score."""
        out: dict = {}
        if self._has_unscored():
            for scorer, kind, reason, n in self.conn.execute("SELECT scorer, kind, reason, COUNT(*) FROM unscored GROUP BY scorer, kind, reason"):
                out.setdefault(scorer, {}).setdefault(kind, {})[reason] = n
        return out

    def scorers(self, kind: str = "feature") -> list[str]:
        """The scorers with at least one score of `kind`."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT scorer FROM scores WHERE kind = ? ORDER BY scorer", (kind,))]

    def unit_scores(self, feature_id: int, kind: str = "feature") -> dict[str, float]:
        """scorer -> score of one unit."""
        return dict(self.conn.execute("SELECT scorer, score FROM scores WHERE kind=? AND feature_id=?", (kind, int(feature_id))))
