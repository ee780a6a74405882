"""What the server holds for one run: the feature database (one read-only connection
per worker thread), the model and SAE (loaded once, on first need), and the one lock
every model computation takes, so concurrent requests queue instead of interleaving
forward passes and residual hooks."""

from __future__ import annotations

import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MonosemanticError
from ..features import FeatureDB, FeatureDBError
from ..run import GENERATION_DTYPE, Run
from ..steering.run import open_run, read_max_acts


class ModelUnavailable(MonosemanticError):
    """The server was started without a model (--no-model) or the run has no SAE."""


@dataclass(frozen=True)
class Limits:
    """Input limits: each keeps one request from holding the model for long."""
    max_prompt_chars: int = 4000      # prompt inspector and steering
    max_prompt_tokens: int = 256      # inspector: 128-token prompts take ~1 s on the embedded model
    max_new_tokens: int = 128         # steering: generation length
    max_interventions: int = 8
    max_abs_value: float = 1e4        # steering values (clamp/add/multiply)
    page_size_max: int = 200


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
        self._load_lock = threading.Lock()
        self._local = threading.local()
        self._plots: dict[str, bytes] = {}
        self.db_error: str | None = None
        self.meta: dict = {}
        try:
            with FeatureDB(self.run_dir, readonly=True) as db:
                self.meta = dict(db.meta)
        except FeatureDBError as e:
            self.db_error = str(e)
        except Exception as e:  # not SQLite, unreadable: still a readable page
            self.db_error = f"{self.run_dir / 'features.db'} cannot be read ({e}): rebuild it with `monosemantic features {self.run_dir} --force`"

    # --- database ------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return int(self.meta.get("n_features", 0) or 0)

    def db(self) -> FeatureDB:
        """This thread's connection (sqlite3 connections are not shared across threads)."""
        if self.db_error is not None:
            raise FeatureDBError(self.db_error)
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = FeatureDB(self.run_dir, readonly=True)
        db.lm = self.lm                   # its tokenizer, for searching phrases
        return db

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
