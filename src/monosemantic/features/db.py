"""Reading `RUN/features.db`; every SQL statement on it lives in features/ (this file,
annotations.py for what autointerp writes, build.py and schema.py for the build).

    db = FeatureDB("runs/x")                      # or the .db path
    f = db.get(123)                               # Feature: stats, examples, logits, neighbours
    db.list(sort="density", descending=False, min_density=1e-4, limit=50)
    db.search("Paris")                            # features that fire most on these tokens
    db.export(123)                                # JSON-ready dict
    db.add_explanation(123, "explainer-x", "...") # for autointerp (annotations.py)

Running the model on a prompt is features/prompt.py's `top_for_prompt`."""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import atomic
from .annotations import Annotations
from .records import (
    SORT_COLUMNS, Example, Feature, FeatureSummary, Interval, TokenEffect, TokenHit, check_kind,
)
from ..token_text import token_texts
from .schema import DB_NAME, DamagedRowError, FeatureDBError, check_schema, connect, f16_from_blob, i32_from_blob, ids_values_from_blob


class FeatureDB(Annotations):
    def __init__(self, path: str | Path, lm=None, readonly: bool = False):
        """lm (optional) is only used for its tokenizer: `search` of phrases."""
        path = Path(path)
        if path.is_dir():
            path = path / DB_NAME
        if not path.is_file():
            raise FeatureDBError(f"{path} does not exist: build it with `monosemantic features {path.parent}`")
        self.path, self.lm = path, lm
        self.conn = connect(path, readonly=readonly, check_same_thread=False)
        try:
            raw = check_schema(self.conn, path)
        except BaseException:
            self.conn.close()
            raise
        self.meta = {k: (v if k in ("model", "model_spec", "created", "schema_version", "complete") else json.loads(v)) for k, v in raw.items()}
        self._vocab: dict[int, bytes] = {}
        self._has_bytes: bool | None = None

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
    def token_bytes(self, token_ids) -> list[bytes]:
        """Raw bytes of each token (a database written before the vocab had bytes: the
        token's own text, so characters split across tokens stay unjoined)."""
        ids = [int(i) for i in token_ids]
        missing = [i for i in set(ids) if i not in self._vocab]
        if missing and self._has_bytes is None:
            self._has_bytes = any(r[1] == "bytes" for r in self.conn.execute("PRAGMA table_info(vocab)"))
        column = "coalesce(bytes, CAST(text AS BLOB))" if self._has_bytes else "CAST(text AS BLOB)"
        for i in range(0, len(missing), 900):
            chunk = missing[i : i + 900]
            rows = self.conn.execute(f"SELECT token_id, {column} FROM vocab WHERE token_id IN ({','.join('?' * len(chunk))})", chunk)
            self._vocab.update(rows.fetchall())
        return [self._vocab.get(i, f"<{i}>".encode()) for i in ids]

    def decode(self, token_ids) -> list[str]:
        """Display text of each token of one sequence, decoded by bytes
        (`token_text.token_texts`: "" continues the previous token's character)."""
        return token_texts(self.token_bytes(token_ids))

    # --- one feature --------------------------------------------------------------

    def _example(self, row) -> Example:
        ctx, pos, act, start, tokens, acts = row
        ids = i32_from_blob(tokens).tolist()
        return Example(int(ctx), int(pos), float(act), int(start), ids, f16_from_blob(acts).tolist(), self.decode(ids))

    def get(self, feature_id: int, kind: str = "feature") -> Feature:
        try:
            return self._read_feature(feature_id, kind)
        except (ValueError, TypeError, zlib.error, sqlite3.DatabaseError) as e:
            raise DamagedRowError(f"{self.path}: the rows of {kind} {feature_id} are damaged ({type(e).__name__}: "
                                  f"{str(e)[:100]}); rebuild it with `monosemantic features {self.run_dir} --force` "
                                  "(explanations and scores are not carried over)") from e

    def _read_feature(self, feature_id: int, kind: str) -> Feature:
        kind = check_kind(kind)
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
            target.extend(TokenEffect(int(i), self.decode([i])[0], float(v)) for i, v in zip(ids, vals))
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
        seed: int = 0,
    ) -> list[FeatureSummary]:
        """Features sorted by `sort` (id, density, max_act, mean_act, count, score, or
        random: a permutation chosen by `seed`) and filtered; `explanation` is a
        case-insensitive substring of the explanation text."""
        kind = check_kind(kind)
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
        if scorer is None:
            scorer = self.list_scorer(kind) or ""
        join_e = "LEFT JOIN explanations e ON e.kind = f.kind AND e.feature_id = f.id" + (" AND e.explainer = ?" if explainer else "")
        join_s = "LEFT JOIN scores s ON s.kind = f.kind AND s.feature_id = f.id" + (" AND s.scorer = ?" if scorer else "")
        join_args = ([explainer] if explainer else []) + ([scorer] if scorer else [])
        order = f"{SORT_COLUMNS[sort].replace(':seed', str(int(seed) % 2**31))} {'DESC' if descending else 'ASC'}, f.id"
        sql = (f"SELECT f.id, f.kind, f.count, f.density, f.max_act, f.mean_act, e.text, s.score FROM features f {join_e} {join_s} "
               f"WHERE {' AND '.join(where)} GROUP BY f.id ORDER BY {order}")
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return [FeatureSummary(*row) for row in self.conn.execute(sql, join_args + args)]

    def list_scorer(self, kind: str = "feature") -> str | None:
        """The scorer whose score `list` shows and sorts by unless told: the one that
        scored the most features (ties: by name); None when nothing is scored."""
        row = self.conn.execute("SELECT scorer FROM scores WHERE kind = ? GROUP BY scorer ORDER BY count(*) DESC, scorer LIMIT 1",
                                (check_kind(kind),)).fetchone()
        return row[0] if row else None

    def densities(self, kind: str = "feature") -> np.ndarray:
        return np.array([r[0] for r in self.conn.execute("SELECT density FROM features WHERE kind = ? ORDER BY id", (check_kind(kind),))])

    def live_densities(self, kind: str = "feature") -> list[tuple[int, float]]:
        """(id, density) of the features that fired at least once, by density then id."""
        return self.conn.execute("SELECT id, density FROM features WHERE kind = ? AND count > 0 ORDER BY density, id",
                                 (check_kind(kind),)).fetchall()

    def max_activations(self, kind: str = "feature") -> dict[int, float]:
        """id -> max activation over the streamed tokens (steering's "=Nx" unit)."""
        rows = self.conn.execute("SELECT id, max_act FROM features WHERE kind = ?", (check_kind(kind),))
        return {int(fid): float(mx or 0.0) for fid, mx in rows}

    def peak_tokens(self, kind: str = "feature", per_feature: int = 10) -> dict[int, list[int]]:
        """id -> the token ids at the peaks of its first `per_feature` top examples,
        most active first (every feature at once: what a map labels its points by)."""
        out: dict[int, list[int]] = {}
        for fid, offset, blob in self.conn.execute(
                "SELECT feature_id, position - start, tokens FROM examples WHERE kind = ? AND section = 'top' AND rank < ? "
                "ORDER BY feature_id, rank", (check_kind(kind), int(per_feature))):
            window = i32_from_blob(blob)
            if 0 <= offset < len(window):
                out.setdefault(int(fid), []).append(int(window[offset]))
        return out

    def n_explained(self, kind: str = "feature") -> int:
        return self.conn.execute("SELECT COUNT(DISTINCT feature_id) FROM explanations WHERE kind = ?", (check_kind(kind),)).fetchone()[0]

    def token_index(self, token_ids, kind: str = "feature") -> dict[int, list[tuple[int, float]]]:
        """Per token id: (feature, its highest activation on that token), strongest
        first; a token absent from the result never occurred in the streamed text."""
        ids = sorted({int(i) for i in token_ids})
        out: dict[int, list[tuple[int, float]]] = {}
        for tok, fid, act in self.conn.execute(
                f"SELECT token_id, feature_id, activation FROM token_index WHERE kind = ? AND token_id IN ({','.join('?' * len(ids))}) "
                "ORDER BY token_id, rank", [check_kind(kind), *ids]):
            out.setdefault(tok, []).append((fid, act))
        return out

    def promoting(self, token_ids, kind: str = "feature") -> list[tuple[int, int, float]]:
        """(feature, token, logit effect) for every feature whose most promoted tokens
        (the stored logit effects) include one of `token_ids`, strongest first."""
        wanted = {int(i) for i in token_ids}
        out = []
        for fid, blob in self.conn.execute("SELECT id, logit_top FROM features WHERE kind = ?", (check_kind(kind),)):
            ids, vals = ids_values_from_blob(blob)
            out += [(int(fid), int(t), float(v)) for t, v in zip(ids, vals) if int(t) in wanted]
        return sorted(out, key=lambda r: -r[2])

    def vocab_ids(self, texts) -> list[int]:
        """Vocabulary ids whose whole text is one of `texts` (no tokenizer needed)."""
        texts = list(texts)
        return [r[0] for r in self.conn.execute(f"SELECT token_id FROM vocab WHERE text IN ({','.join('?' * len(texts))})", texts)]

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
        kind = check_kind(kind)
        ids = self._text_to_ids(text)
        best: dict[int, TokenHit] = {}
        for tok, fid, act in self.conn.execute(
            f"SELECT token_id, feature_id, activation FROM token_index WHERE kind = ? AND token_id IN ({','.join('?' * len(ids))})",
            [kind, *ids]):
            if fid not in best or act > best[fid].activation:
                best[fid] = TokenHit(fid, act, tok, self.decode([tok])[0])
        return sorted(best.values(), key=lambda h: -h.activation)[:limit]
