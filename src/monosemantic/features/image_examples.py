"""Images as an extra source of feature examples, stored in RUN/features.db beside the
text examples: per feature the top-k images by its maximum over all the image tokens,
with the heat map of the first view (the tiles, or the one grid) and its peak patch, and each image once as a small PNG of what the model saw, so the feature page
shows it without reading any file the user named.

The two tables are optional (created on first use; a database without them has no
image examples), so text-only databases keep their schema version. The build runs
every image first and writes in one SQLite transaction at the end: a killed build
leaves the previous image examples as they were, and the same command starts over
(a folder of a few hundred images takes minutes, not hours)."""

from __future__ import annotations

import heapq
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..progress import progress_bar
from .db import FeatureDB
from .schema import f16_blob, f16_from_blob

TABLES = """
CREATE TABLE IF NOT EXISTS image_sources (
    image_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,            -- the file name (no folder)
    png BLOB NOT NULL,             -- the first view's pixels as the model saw them
    view TEXT NOT NULL,            -- "tiles" | "image" | ...
    n_rows INTEGER NOT NULL,
    n_cols INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_examples (
    feature_id INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    image_id INTEGER NOT NULL,
    max_act REAL NOT NULL,
    peak_row INTEGER NOT NULL,
    peak_col INTEGER NOT NULL,
    grid BLOB NOT NULL,            -- f16 heat map, n_rows x n_cols, row-major
    PRIMARY KEY (feature_id, rank)
);
"""


@dataclass
class ImageExamplesBuilt:
    n_images: int
    n_features: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


@dataclass
class ImageExample:
    image_id: int
    name: str
    max_act: float
    peak_row: int
    peak_col: int
    grid: list[list[float]]


def build_image_examples(run_dir, lm, sae, layer: int, files: list[Path], top_k: int = 5,
                         progress: bool = True) -> ImageExamplesBuilt:
    from ..errors import MonosemanticError
    from ..models.images import read_image
    from ..models.vision import require_vision
    from .image_prompt import frame_png, image_features

    require_vision(lm)
    db = FeatureDB(run_dir)  # a missing or unfinished database fails here, before any image runs
    heaps: dict[int, list] = {}          # feature -> min-heap of (max_act, image_id, row, col, grid)
    sources, skipped = [], []
    try:
        for path in progress_bar(files, desc="images", unit="image", enabled=progress):
            try:
                image = read_image(path)
                result = image_features(lm, sae, layer, image)
            except MonosemanticError as e:   # one bad file is reported, not fatal
                skipped.append((path.name, str(e)))
                continue
            view = result.inputs.views[0]
            image_id = len(sources)
            frame = view.frame if view.frame is not None else np.asarray(image)
            sources.append((image_id, path.name, frame_png(frame), view.name, *view.positions.shape))
            grids = result.acts[view.positions.flatten()].numpy()                       # [cells, n]
            peaks = result.acts[result.image_mask].max(0).values.numpy()               # [n], every view
            for f in np.nonzero(peaks > 0)[0]:
                cell = int(grids[:, f].argmax())
                item = (float(peaks[f]), image_id, *divmod(cell, view.positions.shape[1]), grids[:, f].astype(np.float16))
                heap = heaps.setdefault(int(f), [])
                (heapq.heappush if len(heap) < top_k else heapq.heappushpop)(heap, item)
        with db.conn:  # one transaction: the old examples stay until this commits
            db.conn.executescript(TABLES)
            db.conn.execute("DELETE FROM image_examples")
            db.conn.execute("DELETE FROM image_sources")
            db.conn.executemany("INSERT INTO image_sources VALUES (?,?,?,?,?,?)", sources)
            db.conn.executemany("INSERT INTO image_examples VALUES (?,?,?,?,?,?,?)", [
                (f, rank, image_id, act, row, col, f16_blob(grid))
                for f, heap in heaps.items()
                for rank, (act, image_id, row, col, grid) in enumerate(sorted(heap, key=lambda t: -t[0]))])
    finally:
        db.close()
    return ImageExamplesBuilt(len(sources), len(heaps), skipped)


def _has_tables(db: FeatureDB) -> bool:
    row = db.conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='image_examples'").fetchone()
    return row is not None


def image_examples_of(db: FeatureDB, feature_id: int) -> list[ImageExample]:
    """The feature's image examples, strongest first ([] without any)."""
    if not _has_tables(db):
        return []
    rows = db.conn.execute(
        "SELECT e.image_id, s.name, e.max_act, e.peak_row, e.peak_col, e.grid, s.n_rows, s.n_cols "
        "FROM image_examples e JOIN image_sources s USING (image_id) WHERE e.feature_id = ? ORDER BY e.rank",
        (int(feature_id),)).fetchall()
    out = []
    for image_id, name, act, row, col, blob, n_rows, n_cols in rows:
        grid = f16_from_blob(blob).reshape(n_rows, n_cols).round(4).tolist()
        out.append(ImageExample(int(image_id), name, float(act), int(row), int(col), grid))
    return out


def image_png(db: FeatureDB, image_id: int) -> bytes | None:
    if not _has_tables(db):
        return None
    try:
        row = db.conn.execute("SELECT png FROM image_sources WHERE image_id = ?", (int(image_id),)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else bytes(row[0])
