"""Running a sweep (spec.py says what it holds): each run trained as a normal run
directory SWEEP/runs/NAME and scored on the sweep's one held-out sample; a finished
run (RUN/scaling_eval.json) is skipped, one with a checkpoint resumed. With --jobs 1
every run trains in one pass over the store (train.train_many)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import torch

from .. import atomic
from ..activations import open_store
from ..errors import ConfigError
from ..run import Run
from ..sae import ARCHITECTURES, make_sae
from ..sae.registry import config_for
from ..train import TrainConfig, train_run, train_runs
from ..train.checkpoint import load_checkpoint
from ..progress import progress_bar
from .flops import run_flops
from .spec import (  # noqa: F401  (sweep's public API: the spec lives in spec.py)
    EVAL_FILE, KNOBS, RUN_KEYS, SWEEP_FILE, RunSpec, SweepSpec, is_finished, load_spec, parse_spec, prepare,
    read_sweep, run_dir,
)


# --- one run ---------------------------------------------------------------------
def penalty_coefficient(sae_cfg: dict) -> tuple[str | None, float]:
    """(term, coefficient) of the sparsity penalty the scaling loss adds to the MSE:
    the paper's λ·Σ fᵢ‖W_dec,i‖ for relu; nothing for the topk family (fixed k)."""
    cls = ARCHITECTURES[sae_cfg["architecture"]]
    if cls.penalty_term is None:
        return None, 0.0
    return cls.penalty_term, float(sae_cfg[cls.sparsity_knob])


@torch.no_grad()
def evaluate_checkpoint(run: Path, x: torch.Tensor, chunk: int = 4096) -> dict:
    """Score the trained SAE (the final checkpoint, in training units) on x [N, d]
    (scaled store rows): MSE, penalty, scaling loss, L0 and FVE."""
    state = load_checkpoint(run / "checkpoints")
    sae_cfg = state["sae_config"]
    sae = make_sae(config_for(sae_cfg))
    sae.load_state_dict(state["sae"])
    sae.eval()
    term, coefficient = penalty_coefficient(sae_cfg)
    sums = {"mse": 0.0, "penalty": 0.0, "l0": 0.0, "sq_err": 0.0}
    for part in x.split(chunk):
        out = sae(part)
        n = part.shape[0]
        sums["mse"] += float(out.terms["mse"]) * n
        if term is not None and term in out.terms:
            sums["penalty"] += float(out.terms[term]) * n
        sums["l0"] += float(out.n_active.float().sum())
        sums["sq_err"] += float((part - out.x_hat.float()).pow(2).sum())
    N = x.shape[0]
    mse, penalty = sums["mse"] / N, sums["penalty"] / N
    total_var = float((x - x.mean(0)).pow(2).sum())
    return {"mse": mse, "penalty": penalty, "penalty_term": term, "penalty_coefficient": coefficient,
            "loss": mse + coefficient * penalty, "l0": sums["l0"] / N, "fve": 1 - sums["sq_err"] / total_var}


def last_metrics(run: Path) -> dict:
    return Run(run).last_metrics()


def train_and_score(sweep_dir: str | Path, spec: SweepSpec, run: RunSpec, threads: int | None = None) -> dict:
    """Train one run (resuming it if it has a checkpoint) and write RUN/scaling_eval.json."""
    if threads:
        torch.set_num_threads(threads)
    train_run(run_dir(sweep_dir, run), run.sae_cfg(), train_config(spec, run), activations=spec.activations, resume=True, progress=False)
    return score_run(sweep_dir, spec, run)


def train_config(spec: SweepSpec, run: RunSpec) -> TrainConfig:
    return TrainConfig(n_tokens=run.n_tokens, batch_size=spec.batch_size, lr=spec.lr, seed=spec.seed)


def train_one_pass(sweep_dir: str | Path, spec: SweepSpec, runs: list[RunSpec], heldout: torch.Tensor | None = None,
                   workers: int | None = None) -> None:
    """Train `runs` together on one pass over the store (train.train_many), scoring
    each one as soon as it has finished."""
    by_dir = {run_dir(sweep_dir, r): r for r in runs}
    train_runs([(d, r.sae_cfg(), train_config(spec, r)) for d, r in by_dir.items()], activations=spec.activations,
               resume=True, progress=False, on_done=lambda d, _result: score_run(sweep_dir, spec, by_dir[d], heldout), workers=workers)
    for r in runs:   # runs whose SAE was already saved, but not scored
        if not is_finished(sweep_dir, r):
            score_run(sweep_dir, spec, r, heldout)


def score_run(sweep_dir: str | Path, spec: SweepSpec, run: RunSpec, heldout: torch.Tensor | None = None) -> dict:
    """Score a trained run on the sweep's held-out sample; writes RUN/scaling_eval.json."""
    out = run_dir(sweep_dir, run)
    store = open_store(spec.activations)
    x = heldout if heldout is not None else store.sample(spec.eval_tokens, split="heldout", seed=spec.eval_seed)  # [N, d], scaled
    scores = evaluate_checkpoint(out, x)
    m = last_metrics(out)
    steps = run.n_tokens // spec.batch_size
    result = {**asdict(run), "name": run.name, **scores, "d": store.d, "steps": steps,
              "tokens": steps * spec.batch_size,
              "flops": m.get("flops") or run_flops(run.architecture, store.d, run.n_latents, spec.batch_size, run.n_tokens, run.k),
              "elapsed_s": m.get("elapsed_s"), "dead_fraction": m.get("dead_fraction"),
              "eval": {"activations": spec.identity()["activations"], "eval_tokens": x.shape[0], "eval_seed": spec.eval_seed}}
    atomic.write_json(out / EVAL_FILE, result)
    return result


# --- the sweep ---------------------------------------------------------------------
class _Progress:
    """One bar over the steps of every run, fed by polling their metrics.jsonl."""

    def __init__(self, sweep_dir: Path, runs: list[RunSpec], batch_size: int, enabled: bool):
        self.sweep_dir, self.runs, self.batch_size = sweep_dir, runs, batch_size
        total = sum(r.n_tokens // batch_size for r in runs)
        self.bar = progress_bar(total=total, unit="step", desc="sweep", enabled=enabled, dynamic_ncols=True)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.enabled = enabled

    def _done_steps(self) -> tuple[int, int]:
        steps = finished = 0
        for r in self.runs:
            if is_finished(self.sweep_dir, r):
                steps += r.n_tokens // self.batch_size
                finished += 1
            else:
                steps += int(last_metrics(run_dir(self.sweep_dir, r)).get("step", 0))
        return steps, finished

    def _loop(self) -> None:
        while not self.stop.wait(2.0):
            self.refresh()

    def refresh(self) -> None:
        steps, finished = self._done_steps()
        self.bar.n = steps
        self.bar.set_postfix_str(f"{finished}/{len(self.runs)} runs done", refresh=False)
        self.bar.refresh()

    def __enter__(self):
        if self.enabled:
            self.refresh()
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.enabled:
            self.thread.join()
            self.refresh()
        self.bar.close()


def run_sweep(sweep_dir: str | Path, spec: SweepSpec, jobs: int = 1, progress: bool = True, one_pass: bool = True,
              workers: int | None = None) -> list[dict]:
    """Train and score every unfinished run of `spec` under SWEEP/runs; returns the
    scores of all runs. By default (jobs 1) every run trains in one pass over the
    store (train.train_many: the data pipeline is paid once, not once per run, and
    `workers` SAEs step at once, by default one per thread);
    `one_pass=False` trains them one after the other; jobs > 1 trains that many runs
    at once in worker processes, each with cpu_count // jobs threads."""
    sweep_dir = Path(sweep_dir)
    if jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    store = open_store(spec.activations)          # fails early on a missing store
    if store.d <= 0:
        raise ConfigError(f"store {spec.activations} is empty")
    prepare(sweep_dir, spec)
    todo = [r for r in spec.runs if not is_finished(sweep_dir, r)]
    # Small runs first: the frontier's low end appears early, and an interruption
    # loses the least work.
    todo.sort(key=lambda r: run_flops(r.architecture, store.d, r.n_latents, spec.batch_size, r.n_tokens, r.k))
    with _Progress(sweep_dir, spec.runs, spec.batch_size, progress):
        if jobs == 1 and one_pass and todo:
            heldout = store.sample(spec.eval_tokens, split="heldout", seed=spec.eval_seed)
            train_one_pass(sweep_dir, spec, todo, heldout, workers)
        elif jobs == 1:
            for r in todo:
                train_and_score(sweep_dir, spec, r)
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(train_and_score, sweep_dir, spec, r, threads) for r in todo]
                for f in as_completed(futures):
                    f.result()
    return collect(sweep_dir)


def collect(sweep_dir: str | Path, check: bool = True) -> list[dict]:
    """Scores of the sweep's finished runs; with `check`, refuses runs scored on
    another store or eval sample than the sweep's."""
    sweep_dir = Path(sweep_dir)
    spec = read_sweep(sweep_dir)
    want = {"activations": spec.identity()["activations"], "eval_seed": spec.eval_seed}
    results = []
    for r in spec.runs:
        path = run_dir(sweep_dir, r) / EVAL_FILE
        if not path.is_file():
            continue
        result = atomic.read_json(path)
        got = {k: result["eval"].get(k) for k in want}
        if check and got != want:
            raise ConfigError(f"{path} was scored on {got}, the sweep uses {want}: re-score it (delete the file and rerun the sweep)")
        results.append(result)
    if check and len({res["eval"]["eval_tokens"] for res in results}) > 1:
        raise ConfigError(f"runs of {sweep_dir} were scored on held-out samples of different sizes; delete their {EVAL_FILE} and rerun the sweep")
    return results


def measured_throughput(results: list[dict]) -> float:
    """Training FLOPs per second on this machine, pooled over the sweep's runs."""
    timed = [r for r in results if r.get("elapsed_s")]
    if not timed:
        raise ConfigError("the sweep's runs have no timings: --hours needs a sweep trained on this machine; use --budget")
    return sum(r["flops"] for r in timed) / sum(r["elapsed_s"] for r in timed)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m monosemantic.scaling.sweep SPEC SWEEP [JOBS]
    import sys

    t0 = time.time()
    run_sweep(sys.argv[2], load_spec(sys.argv[1]), jobs=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    print(f"sweep done in {time.time() - t0:.0f} s")
