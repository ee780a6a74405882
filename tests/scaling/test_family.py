"""The family: three SAEs along the fitted frontier of a tiny sweep, each trained
and evaluated, and skipped when run again."""

from __future__ import annotations

import json

from monosemantic.scaling.family import FAMILY_FILE, family_budgets, format_family, train_family
from monosemantic.scaling.fit import fit_sweep
from monosemantic.scaling.plan import plan
from monosemantic.scaling.sweep import collect


def test_family_on_a_tiny_fitted_sweep(tiny_sweep):
    fit = fit_sweep(collect(tiny_sweep), n_boot=200)
    budgets = family_budgets(fit)
    top = max(p.compute for p in fit.frontier)
    assert budgets == [top / 16, top / 4, top]
    members = train_family(tiny_sweep, fit, budgets, eval_tokens=256, progress=False)
    assert len(members) == 3
    for m, budget in zip(members, budgets):
        p = plan(fit, budget, batch_size=64)
        assert (m.n_latents, m.n_tokens) == (p.n_latents, p.n_tokens), "each member is the planner's allocation"
        cfg = json.loads((tiny_sweep / "family" / m.name / "sae" / "cfg.json").read_text())
        assert cfg["d_sae"] == m.n_latents
        assert 0 < m.fve <= 1 and m.l0 > 0 and 0 <= m.dead_fraction <= 1 and m.train_seconds > 0
        assert m.loss > 0 and m.predicted_loss > 0     # observed on the sweep's held-out sample, beside the prediction
        assert m.loss_recovered is None          # a plain .npy store has no model to splice into
    assert [m.n_tokens for m in members] == sorted(m.n_tokens for m in members)
    saved = json.loads((tiny_sweep / "family" / FAMILY_FILE).read_text())
    assert [s["name"] for s in saved] == [m.name for m in members]
    table = format_family(members)
    assert all(m.name in table and f"{m.loss:8.2f}" in table for m in members) and "n/a" in table

    weights = [(tiny_sweep / "family" / m.name / "sae" / "sae_weights.safetensors").stat().st_mtime_ns for m in members]
    again = train_family(tiny_sweep, fit, budgets, eval_tokens=256, progress=False)
    assert [m.fve for m in again] == [m.fve for m in members]
    assert [(tiny_sweep / "family" / m.name / "sae" / "sae_weights.safetensors").stat().st_mtime_ns for m in members] == weights
