"""What autointerp writes into `features.db` and reads back: explanations and scores
(a mixin of FeatureDB, which holds the connection)."""

from __future__ import annotations

import json
import sqlite3

from .records import UNIT_KINDS, check_kind

UNSCORED = """CREATE TABLE IF NOT EXISTS unscored (
    feature_id INTEGER NOT NULL, kind TEXT NOT NULL, scorer TEXT NOT NULL,
    reason TEXT NOT NULL,          -- e.g. 'no held-out activations': why there is no score
    created TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (kind, feature_id, scorer))"""


class Annotations:
    conn: sqlite3.Connection

    def add_explanation(self, feature_id: int, explainer: str, text: str, kind: str = "feature") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO explanations (feature_id, kind, explainer, text) VALUES (?,?,?,?)",
                              (int(feature_id), check_kind(kind, UNIT_KINDS), explainer, text))

    def add_score(self, feature_id: int, scorer: str, score: float, details: dict | None = None, kind: str = "feature") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO scores (feature_id, kind, scorer, score, details) VALUES (?,?,?,?,?)",
                              (int(feature_id), check_kind(kind, UNIT_KINDS), scorer, float(score), json.dumps(details or {})))

    def explanations_of(self, ids, kind: str = "feature") -> dict[int, str]:
        """The first explanation of each feature in `ids` that has one."""
        ids = sorted({int(i) for i in ids})
        out: dict[int, str] = {}
        for i in range(0, len(ids), 900):          # SQLite's limit on bound parameters
            chunk = ids[i : i + 900]
            for fid, text in self.conn.execute(
                    f"SELECT feature_id, text FROM explanations WHERE kind = ? AND feature_id IN ({','.join('?' * len(chunk))})",
                    [check_kind(kind), *chunk]):
                out.setdefault(fid, text)
        return out

    def has_explanation(self, feature_id: int, explainer: str, kind: str = "feature") -> bool:
        return self.conn.execute("SELECT 1 FROM explanations WHERE kind=? AND feature_id=? AND explainer=?",
                                 (check_kind(kind), int(feature_id), explainer)).fetchone() is not None

    def scorers_of(self, feature_id: int, kind: str = "feature") -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT scorer FROM scores WHERE kind=? AND feature_id=?",
                                                (check_kind(kind), int(feature_id)))}

    def score_of(self, feature_id: int, scorer: str, kind: str = "feature") -> float | None:
        row = self.conn.execute("SELECT score FROM scores WHERE kind=? AND feature_id=? AND scorer=?",
                                (check_kind(kind), int(feature_id), scorer)).fetchone()
        return None if row is None else row[0]

    def all_scores(self) -> list[tuple[str, str, float]]:
        """(scorer, kind, score) of every score, by scorer, kind and feature id."""
        return self.conn.execute("SELECT scorer, kind, score FROM scores ORDER BY scorer, kind, feature_id").fetchall()

    # --- per-unit results of `interpret` (autointerp/interpret.py) ----------------------
    def add_unit_results(self, kind: str, records, explainer: str) -> None:
        """In one transaction, for each (unit id, {scorer: (score, details)}, {scorer:
        reason}, explanation or None): its scores, why the others are missing, and its
        explanation by `explainer`. A kill leaves each unit all written or not at all."""
        check_kind(kind, UNIT_KINDS)
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

    def unscored_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """scorer -> kind -> reason -> units without a score."""
        out: dict = {}
        if self._has_unscored():
            for scorer, kind, reason, n in self.conn.execute("SELECT scorer, kind, reason, COUNT(*) FROM unscored GROUP BY scorer, kind, reason"):
                out.setdefault(scorer, {}).setdefault(kind, {})[reason] = n
        return out

    def scorer_names(self, kind: str = "feature") -> list[str]:
        """The scorers with at least one score of `kind`."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT scorer FROM scores WHERE kind = ? ORDER BY scorer", (kind,))]
