"""The SQLite schema of `RUN/features.db` (documented in docs/features_db.md), its
version check, and the compact blob encodings of arrays."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
import zlib
from pathlib import Path

import numpy as np

from ..errors import MonosemanticError

SCHEMA_VERSION = 1
DB_NAME = "features.db"


class FeatureDBError(MonosemanticError):
    """A feature database is missing, unfinished or unreadable."""


class DamagedRowError(FeatureDBError):
    """One row cannot be decoded (a blob of the wrong size, a corrupt page): the rest
    of the database may still be fine."""


class SchemaVersionError(FeatureDBError):
    """The database was written with another schema version."""


def connect(path: Path, readonly: bool = False, **kwargs) -> sqlite3.Connection:
    """An SQLite connection through a URI with the path percent-escaped: a run
    directory named `a #1?` or `100%` is a file name, not a query or a fragment."""
    path = Path(path)
    if readonly:
        _roll_back_hot_journal(path)
    uri = "file:" + urllib.parse.quote(str(path.absolute()), safe="/") + ("?mode=ro" if readonly else "")
    return sqlite3.connect(uri, uri=True, **kwargs)


def _roll_back_hot_journal(path: Path) -> None:
    """A writer killed mid-transaction (explain, a score) leaves `features.db-journal`;
    a read-only connection cannot replay it and fails. One read through a writable
    connection makes SQLite roll the database back to its last commit."""
    journal = path.with_name(path.name + "-journal")
    if not journal.is_file() or journal.stat().st_size == 0:
        return
    if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
        raise FeatureDBError(f"{journal} was left by a killed writer and {path.parent} is read-only here: "
                             f"open the run once where it is writable (e.g. `monosemantic serve` as its owner) to roll it back")
    conn = connect(path, timeout=30)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    finally:
        conn.close()


SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE features (
    kind TEXT NOT NULL CHECK (kind IN ('feature', 'neuron')),
    id INTEGER NOT NULL,
    count INTEGER NOT NULL,        -- tokens it fired on (activation > 0)
    density REAL NOT NULL,         -- count / tokens streamed
    max_act REAL NOT NULL,
    mean_act REAL NOT NULL,        -- mean over the tokens it fired on
    hist BLOB NOT NULL,            -- int32 counts per log10 bin (meta hist_edges), zlib
    logit_top BLOB,                -- int32 token ids then float32 values, most promoted first
    logit_bottom BLOB,             -- the same, most suppressed first
    neighbours BLOB,               -- int32 ids then float32 cosines, nearest first
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX features_by_density ON features (kind, density);
CREATE INDEX features_by_max ON features (kind, max_act);
CREATE TABLE examples (
    kind TEXT NOT NULL,
    feature_id INTEGER NOT NULL,
    section TEXT NOT NULL CHECK (section IN ('top', 'interval', 'negative')),
    interval INTEGER NOT NULL,     -- -1 for top and negative; 0 = top octave ... n_intervals = tail
    rank INTEGER NOT NULL,
    context_id INTEGER NOT NULL,   -- row of RUN/tokens contexts
    position INTEGER NOT NULL,     -- the example token within the context
    activation REAL NOT NULL,      -- at that token (0 for negative examples)
    lo REAL, hi REAL,              -- bounds of the interval (section 'interval')
    start INTEGER NOT NULL,        -- context position of the first window token
    tokens BLOB NOT NULL,          -- int32 token ids of the window
    acts BLOB NOT NULL,            -- float16 activations over the window, zlib
    PRIMARY KEY (kind, feature_id, section, interval, rank)
) WITHOUT ROWID;
CREATE TABLE token_index (
    kind TEXT NOT NULL,
    token_id INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    feature_id INTEGER NOT NULL,
    activation REAL NOT NULL,      -- the feature's highest activation on this token
    PRIMARY KEY (kind, token_id, rank)
) WITHOUT ROWID;
CREATE TABLE vocab (
    token_id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,            -- the token alone, as token_text shows it
    bytes BLOB                     -- its raw bytes: sequences are decoded from these (token_text.py)
);
CREATE INDEX vocab_by_text ON vocab (text);
CREATE TABLE explanations (
    feature_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    explainer TEXT NOT NULL,
    text TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (kind, feature_id, explainer)
);
CREATE TABLE scores (
    feature_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    scorer TEXT NOT NULL,
    score REAL NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',   -- JSON
    created TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (kind, feature_id, scorer)
);
CREATE INDEX scores_by_score ON scores (kind, scorer, score);
"""


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def check_schema(conn: sqlite3.Connection, path: Path) -> dict:
    """The meta table as a dict; raises if the database is not a finished one of
    this schema version."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise FeatureDBError(f"{path} is not a feature database ({e}): rebuild it with `monosemantic features RUN --force`") from e
    version = meta.get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise SchemaVersionError(
            f"{path} has feature-database schema version {version or 'unknown'}, this monosemantic reads version "
            f"{SCHEMA_VERSION}: rebuild it with `monosemantic features RUN --force` (explanations and scores in it are not carried over)"
        )
    if meta.get("complete") != "1":
        raise FeatureDBError(f"{path} is unfinished: run `monosemantic features RUN` again to complete it")
    return meta


# --- blobs ----------------------------------------------------------------------
def ids_values_blob(ids: np.ndarray, values: np.ndarray) -> bytes:
    return np.asarray(ids, dtype="<i4").tobytes() + np.asarray(values, dtype="<f4").tobytes()


def ids_values_from_blob(blob: bytes | None) -> tuple[np.ndarray, np.ndarray]:
    if not blob:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    k = len(blob) // 8
    return np.frombuffer(blob[: 4 * k], "<i4"), np.frombuffer(blob[4 * k :], "<f4")


def f16_blob(values: np.ndarray) -> bytes:
    return zlib.compress(np.asarray(values, dtype="<f2").tobytes(), 1)


def f16_from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), "<f2").astype(np.float32)


def i32_blob(values: np.ndarray, compress: bool = False) -> bytes:
    raw = np.asarray(values, dtype="<i4").tobytes()
    return zlib.compress(raw, 1) if compress else raw


def i32_from_blob(blob: bytes, compressed: bool = False) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob) if compressed else blob, "<i4")
