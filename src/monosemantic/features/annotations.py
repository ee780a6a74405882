"""What autointerp writes into `features.db` and reads back: explanations and scores
(a mixin of FeatureDB, which holds the connection)."""

from __future__ import annotations

import json
import sqlite3

from .records import check_kind


class Annotations:
    conn: sqlite3.Connection

    def add_explanation(self, feature_id: int, explainer: str, text: str, kind: str = "feature") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO explanations (feature_id, kind, explainer, text) VALUES (?,?,?,?)",
                              (int(feature_id), check_kind(kind), explainer, text))

    def add_score(self, feature_id: int, scorer: str, score: float, details: dict | None = None, kind: str = "feature") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO scores (feature_id, kind, scorer, score, details) VALUES (?,?,?,?,?)",
                              (int(feature_id), check_kind(kind), scorer, float(score), json.dumps(details or {})))

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
