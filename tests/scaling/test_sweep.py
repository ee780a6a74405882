"""Sweeps: spec validation, resume after an interruption without re-running
finished runs, and refusing to mix stores or eval samples."""

from __future__ import annotations

import json

import pytest

from monosemantic.errors import ConfigError
from monosemantic.scaling import sweep as sw
from monosemantic.train import loop

BATCH = 64  # conftest.BATCH


class Interrupted(Exception):
    pass


def test_spec_grid_and_validation(store, make_spec, tmp_path):
    write_spec = make_spec
    spec = sw.load_spec(write_spec(tmp_path / "s.json", store, runs=[{"n_latents": 64, "n_tokens": BATCH * 10}]))
    assert [(r.n_latents, r.n_tokens) for r in spec.runs] == [(16, 2560), (16, 5120), (32, 2560), (32, 5120), (64, 640)]
    assert {r.l1_coefficient for r in spec.runs} == {1.0} and spec.batch_size == BATCH
    bad = [({"l1_coeficient": 5}, "unknown key"),                       # a typo must not be silently ignored
           ({"grid": {"n_latents": [16], "width": [1]}}, "grid"),
           ({"grid": {"n_latents": ["16"], "n_tokens": [BATCH]}}, "integer"),
           ({"batch_size": 0}, "positive"),
           ({"grid": None, "runs": [{"n_latents": 16}]}, "n_tokens"),
           ({"runs": [{"n_latents": 16, "n_tokens": BATCH, "l1_coefficient": 2.0}]}, "mixes"),
           ({"grid": {"n_latents": [16], "n_tokens": [BATCH // 2]}}, "batch_size"),
           ({"architecture": "gated"}, "architecture")]
    for overrides, message in bad:
        with pytest.raises(ConfigError, match=message):
            sw.load_spec(write_spec(tmp_path / "bad.json", store, **overrides))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read sweep spec"):
        sw.load_spec(tmp_path / "broken.json")


def test_interrupted_sweep_resumes_without_rerunning_finished_runs(store, make_spec, tmp_path, monkeypatch):
    write_spec = make_spec
    long_run = {"n_latents": 32, "n_tokens": BATCH * 300}     # checkpointed at step 200 (TrainConfig default)
    spec = sw.load_spec(write_spec(tmp_path / "s.json", store, grid={"n_latents": [16, 32], "n_tokens": [BATCH * 40]},
                                   runs=[long_run]))
    out = tmp_path / "sweep"
    real = loop.sparsity_factor
    steps_run: set[int] = set()     # steps of the long run trained (the loop asks once per step, again when logging)
    interrupt = [True]

    def interrupt_long_run(step, total, fraction):
        if total == 300:
            steps_run.add(step)
            if step == 250 and interrupt[0]:
                raise Interrupted
        return real(step, total, fraction)

    monkeypatch.setattr(loop, "sparsity_factor", interrupt_long_run)
    with pytest.raises(Interrupted):
        sw.run_sweep(out, spec, progress=False)
    short = [r for r in spec.runs if r.n_tokens == BATCH * 40]
    longer = next(r for r in spec.runs if r.n_tokens == BATCH * 300)
    assert all(sw.is_finished(out, r) for r in short), "the small runs go first and finish"
    assert not sw.is_finished(out, longer) and not (sw.run_dir(out, longer) / "sae").exists()
    assert (sw.run_dir(out, longer) / "checkpoints" / "latest.pt").is_file()
    stamps = {r.name: [(sw.run_dir(out, r) / f).stat().st_mtime_ns for f in (sw.EVAL_FILE, "sae/sae_weights.safetensors", "metrics.jsonl")]
              for r in short}
    metrics_before = (sw.run_dir(out, longer) / "metrics.jsonl").read_text().splitlines()

    steps_run.clear()
    interrupt[0] = False
    results = sw.run_sweep(out, spec, progress=False)
    assert sorted(steps_run) == list(range(200, 300)), "the interrupted run continues from its step-200 checkpoint"
    assert {r["name"] for r in results} == {r.name for r in spec.runs}
    for r in short:   # finished runs were neither retrained nor re-scored
        assert [(sw.run_dir(out, r) / f).stat().st_mtime_ns for f in (sw.EVAL_FILE, "sae/sae_weights.safetensors", "metrics.jsonl")] == stamps[r.name]
    lines = (sw.run_dir(out, longer) / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(20, 301, 20)), "every logged step once, step 200 included"
    assert lines[:10] == metrics_before[:10], "lines up to the checkpoint are kept, not rewritten"
    scores = next(r for r in results if r["name"] == longer.name)
    assert scores["flops"] == 300 * 10 * BATCH * 16 * 32 and scores["steps"] == 300
    assert 0 < scores["mse"] < scores["loss"] and 0 < scores["fve"] <= 1 and scores["l0"] > 0
    assert scores["loss"] == pytest.approx(scores["mse"] + 1.0 * scores["penalty"])


def test_sweep_refuses_to_mix_stores_or_eval_samples(store, make_spec, make_store, tmp_path):
    write_spec, write_store = make_spec, make_store
    out = tmp_path / "sweep"
    one_run = {"grid": {"n_latents": [16], "n_tokens": [BATCH * 20]}}
    sw.run_sweep(out, sw.load_spec(write_spec(tmp_path / "a.json", store, **one_run)), progress=False)
    other = write_store(tmp_path / "other.npy", seed=1)
    for path, overrides in ((other, {}), (store, {"eval_tokens": 128}), (store, {"eval_seed": 1}), (store, {"batch_size": 32})):
        spec = sw.load_spec(write_spec(tmp_path / "b.json", path, **{**one_run, **overrides}))
        with pytest.raises(ConfigError, match="compare like with like"):
            sw.run_sweep(out, spec, progress=False)
    # more runs over the same store and eval sample are welcome
    more = sw.load_spec(write_spec(tmp_path / "c.json", store, grid={"n_latents": [16, 24], "n_tokens": [BATCH * 20]}))
    assert len(sw.run_sweep(out, more, progress=False)) == 2
    # a run scored on another store (e.g. copied in from another sweep) is refused by the fit's loader
    path = sw.run_dir(out, more.runs[1]) / sw.EVAL_FILE
    scores = json.loads(path.read_text())
    scores["eval"]["activations"] = str(other)
    path.write_text(json.dumps(scores))
    with pytest.raises(ConfigError, match="scored on"):
        sw.collect(out)
    assert len(sw.collect(out, check=False)) == 2
