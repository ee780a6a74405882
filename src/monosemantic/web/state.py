"""What the server holds for one run: the feature database (one read-only connection
per worker thread), the model and SAE (loaded once, on first need), and the one lock
every model computation takes, so concurrent requests queue instead of interleaving
forward passes and residual hooks."""

from __future__ import annotations

import contextlib
import math
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MonosemanticError
from ..features import FeatureDB, FeatureDBError
from ..run import GENERATION_DTYPE, Run
from ..steering.run import open_run, read_max_acts


class ModelUnavailable(MonosemanticError):
    """The server was started without a model (--no-model) or the run has no SAE."""


class ServerBusy(MonosemanticError):
    """Too many model requests are running or waiting: answered 503 with Retry-After."""

    retry_after_s = 5


@dataclass(frozen=True)
class Limits:
    """Input limits: each keeps one request from holding the model for long."""
    max_prompt_chars: int = 4000      # prompt inspector and steering
    max_prompt_tokens: int = 256      # inspector and steering: 128-token prompts take ~1 s on the embedded model
    max_new_tokens: int = 128         # steering: generation length
    max_interventions: int = 8
    max_abs_value: float = 1e4        # steering values (clamp/add/multiply)
    page_size_max: int = 200
    max_request_seconds: float = 60.0  # compute budget of one steering request: it stops there and says so
    prefill_tokens: int = 32          # a steering prompt is read this many tokens per model-lock hold
    max_queued: int = 4               # model requests waiting behind the running one; more get 503
    max_body_bytes: int = 64 * 1024   # request bodies (a maximal steering request is ~5 kB)
    max_image_bytes: int = 8 * 1024 * 1024  # an image upload's body (web/images.py), instead of max_body_bytes


class RunState:
    def __init__(self, run: Run | str | Path, lm=None, sae=None, model: bool = True, limits: Limits | None = None):
        self.run = Run.of(run)
        self.run_dir = self.run.dir
        self.limits = limits or Limits()
        self.model_enabled = model
        self.lm, self.sae = lm, sae
        self.layer: int | None = None
        self.max_acts = None                  # [n] tensor, steering's "=Nx" unit
        self.model_lock = threading.Lock()    # one model computation at a time
        self.model_requests = 0               # admitted model requests, running or waiting for the lock
        self.stopped_early = {"cancelled": 0, "budget": 0}  # steering requests stopped before their end
        self._admit_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._local = threading.local()
        self._plots: dict[str, bytes] = {}
        self._tokenizer = None
        self._db_stamp: tuple | None = None
        self._db_generation = 0
        self._checked_at = 0.0
        self._reload_lock = threading.Lock()
        self._open_meta()

    # --- database ------------------------------------------------------------------
    def _stamp(self) -> tuple | None:
        try:
            st = self.run.features_db_path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _open_meta(self) -> None:
        stamp, error, meta = self._stamp(), None, {}
        try:
            with FeatureDB(self.run_dir, readonly=True) as db:
                meta = dict(db.meta)
        except FeatureDBError as e:
            error = str(e)
        except Exception as e:  # not SQLite, unreadable: still a readable page
            error = f"{self.run_dir / 'features.db'} cannot be read ({e}): rebuild it with `monosemantic features {self.run_dir} --force`"
        # swapped together: a request running meanwhile sees the old database or the new one
        self._db_stamp, self.db_error, self.meta = stamp, error, meta

    def refresh(self) -> bool:
        """Notice a rebuilt (or newly built) features.db: the builder renames a new file
        into place, so its inode and mtime change. Checked at most once a second; on a
        change every thread reopens its connection and the cached plots are redrawn."""
        now = time.monotonic()
        if now - self._checked_at < 1.0:
            return False
        self._checked_at = now
        if self._stamp() == self._db_stamp:
            return False
        with self._reload_lock:
            if self._stamp() == self._db_stamp:
                return False
            self._open_meta()
            self._plots.clear()
            self._db_generation += 1
            if self.max_acts is not None and self.sae is not None and self.db_error is None:
                self.max_acts = read_max_acts(self.run.features_db_path, int(self.sae.W_dec.shape[0]))
        return True

    @property
    def n_features(self) -> int:
        return int(self.meta.get("n_features", 0) or 0)

    @property
    def n_neurons(self) -> int:
        return int(self.meta.get("n_neurons", 0) or 0)

    def db(self) -> FeatureDB:
        """This thread's connection (sqlite3 connections are not shared across threads)."""
        self.refresh()
        if self.db_error is not None:
            raise FeatureDBError(self.db_error)
        db = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "generation", -1) != self._db_generation:
            db.close()
            db = None
        if db is None:
            db = self._local.db = FeatureDB(self.run_dir, readonly=True)
            self._local.generation = self._db_generation
        db.lm = self.lm                   # its tokenizer, for searching phrases
        return db

    def tokenizer(self):
        """The run's tokenizer for search: the loaded model's, or loaded alone (no model
        weights) from the spec features.db records; None if it cannot be loaded."""
        if self.lm is not None:
            return self.lm.tokenizer
        if self._tokenizer is None and self.meta.get("model_spec"):
            from ..models.tokenizer import load_tokenizer

            try:
                self._tokenizer = load_tokenizer(str(self.meta["model_spec"]))
            except MonosemanticError:
                self._tokenizer = False
        return self._tokenizer or None

    # --- model -------------------------------------------------------------------------
    @property
    def model_loaded(self) -> bool:
        return self.lm is not None and self.sae is not None and self.layer is not None

    def ensure_model(self) -> None:
        """Load the run's model and SAE the first time a request needs them."""
        if self.model_loaded:
            return
        if not self.model_enabled:
            raise ModelUnavailable("the server was started with --no-model: restart without it to inspect prompts and steer")
        if self.db_error is not None:
            raise FeatureDBError(self.db_error)
        with self._load_lock:
            if self.model_loaded:
                return
            if not self.run.sae_dir.is_dir():
                raise ModelUnavailable(f"{self.run.sae_dir} does not exist: train the SAE first (`monosemantic train`)")
            if self.sae is None:
                run = open_run(self.run, lm=self.lm)
                self.lm, self.sae, self.max_acts, self.layer = run.lm, run.sae, run.max_acts, run.layer
            else:
                if self.lm is None:
                    self.lm = self.run.load_model(GENERATION_DTYPE)
                self.max_acts = read_max_acts(self.run.features_db_path, int(self.sae.W_dec.shape[0]))
                self.layer = self.run.layer

    def admit(self) -> None:
        """Count a model request in, or refuse it when the queue is full (a caller
        that gets past this must call `release`)."""
        with self._admit_lock:
            if self.model_requests > self.limits.max_queued:
                raise ServerBusy(f"the model is busy ({self.model_requests} requests running or waiting): "
                                 f"try again in {ServerBusy.retry_after_s} s")
            self.model_requests += 1

    def release(self) -> None:
        with self._admit_lock:
            self.model_requests -= 1

    @contextlib.contextmanager
    def model_slot(self):
        self.admit()
        try:
            yield
        finally:
            self.release()

    def preload(self) -> threading.Thread:
        """Load the model in the background so the first prompt does not wait for it."""
        def load():
            try:
                self.ensure_model()
            except MonosemanticError:
                pass  # reported to the first request that needs the model

        t = threading.Thread(target=load, name="monosemantic-model-load", daemon=True)
        t.start()
        return t

    # --- run files ---------------------------------------------------------------------
    def eval_results(self) -> dict:
        return self.run.eval_result()

    def metrics(self) -> list[dict]:
        return self.run.metrics()

    def plot(self, name: str) -> bytes | None:
        """PNG bytes of one overview plot, drawn once with the report's functions."""
        if name not in self._plots:
            self._plots[name] = _draw(self, name)
        return self._plots[name]


PLOTS = ("training_curves", "density")


def _draw(state: RunState, name: str) -> bytes | None:
    from ..report import plots   # matplotlib: only imported when a plot is first drawn

    with tempfile.TemporaryDirectory(prefix="monosemantic-web-") as tmp:
        path = Path(tmp) / f"{name}.png"
        if name == "training_curves":
            records = state.metrics()
            if not records or plots.training_curves(records, path) is None:
                return None
        elif name == "density":
            if state.db_error is None:
                densities = state.db().densities()
                plots.density_histogram(np.asarray(densities), int(state.meta.get("n_tokens", 0) or 0), path)
            else:
                ev = state.eval_results()
                hist, edges = ev.get("log10_density_hist"), ev.get("log10_density_edges")
                if not hist or not edges or len(edges) != len(hist) + 1:
                    return None
                plots.density_from_eval(hist, edges, path)
        else:
            return None
        return path.read_bytes()


def scalar_items(d: dict) -> list[tuple[str, str]]:
    """eval.json's scalar entries, formatted for a table."""
    out = []
    for k, v in sorted(d.items()):
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int):
            out.append((k, f"{v:,}"))
        elif isinstance(v, float) and math.isfinite(v):
            out.append((k, f"{v:.4g}"))
        elif isinstance(v, str) and len(v) < 200:
            out.append((k, v))
    return out
