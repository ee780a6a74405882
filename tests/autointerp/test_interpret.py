"""`interpret_run` end to end on a tiny real run (tiny Llama, random ReLU SAE, real
features.db, real MiniLM): every selected unit gets a score or a stated reason for
each scorer, a killed run resumes to the same database, and bad runs fail in one line."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from feature_helpers import TinySAE, make_tokens  # noqa: E402

from monosemantic.autointerp import InterpretConfig, compare_units, interpret_run  # noqa: E402
from monosemantic.autointerp.interpret import OFFLINE_SCORERS  # noqa: E402
from monosemantic.autointerp.pool import PoolConfig  # noqa: E402
from monosemantic.autointerp.scorers import embedding  # noqa: E402
from monosemantic.cli.main import main  # noqa: E402
from monosemantic.features import FeatureDB, build_feature_db  # noqa: E402

SOURCES = ("python-stdlib", "fortunes", "debian-handbook/de-DE", "debian-handbook/fr-FR")
CFG = InterpretConfig(units={"feature": 8, "neuron": 8, "pca": 3, "random": 3}, chunk=6, pool=PoolConfig(n_explain=40, n_score=20))


@pytest.fixture(scope="module")
def parts(tiny_llama):
    return tiny_llama, TinySAE(tiny_llama.d_model, 48, scale=3.0), make_tokens(200, 32, tiny_llama.bos_id), embedding.SentenceEmbedder()


@pytest.fixture(scope="module")
def built(tmp_path_factory, parts):
    lm, sae, tokens, _ = parts
    run = tmp_path_factory.mktemp("interpret-run")
    build_feature_db(run, lm=lm, sae=sae, tokens=tokens, layer=2, n_tokens=2000, neurons=True, progress=False)
    return run


def _interpret(run, parts, **kw):
    lm, sae, tokens, embedder = parts
    sources = {i: SOURCES[i % 4] for i in range(200)}
    return interpret_run(run, kw.pop("cfg", CFG), lm=lm, sae=sae, tokens=tokens, sources=sources, embedder=embedder, **kw)


def _rows(run):
    conn = sqlite3.connect(run / "features.db")
    try:
        scores = conn.execute("SELECT kind, feature_id, scorer, round(score, 6) FROM scores ORDER BY 1, 2, 3").fetchall()
        unscored = conn.execute("SELECT kind, feature_id, scorer, reason FROM unscored ORDER BY 1, 2, 3").fetchall()
        expl = conn.execute("SELECT kind, feature_id, text FROM explanations WHERE explainer='n2g' ORDER BY 1, 2").fetchall()
    finally:
        conn.close()
    return scores, unscored, expl


@pytest.mark.slow  # ~80 s of CPU: the whole pipeline twice and a resume
def test_every_unit_is_scored_or_says_why_and_a_killed_run_resumes(built, parts, tmp_path, monkeypatch):
    full = tmp_path / "full"
    shutil.copytree(built, full)
    r = _interpret(full, parts)
    assert {k: len(v) for k, v in r.selected.items()} == {"feature": 8, "neuron": 8, "pca": 3, "random": 3}
    scores, unscored, expl = _rows(full)
    have = {(k, i, s) for k, i, s, _ in scores} | {(k, i, s) for k, i, s, _ in unscored}
    assert have == {(k, i, s) for k, ids in r.selected.items() for i in ids for s in OFFLINE_SCORERS}
    assert all(0.0 <= v <= 1.0 for *_, v in scores)
    assert {k for k, *_ in expl} <= set(r.selected) and any(k == "feature" for k, *_ in expl)
    assert (full / "autointerp" / "probing.json").is_file()
    assert sum(_interpret(full, parts).scored.values()) == 0  # finished: nothing done twice

    killed = tmp_path / "killed"
    shutil.copytree(built, killed)
    calls = {"n": 0}
    original = FeatureDB.add_unit_results

    def dies_after_one_chunk(self, *a, **kw):
        if calls["n"] == 1:
            raise KeyboardInterrupt  # as a kill between two chunks: the first is committed, the rest not
        calls["n"] += 1
        return original(self, *a, **kw)

    monkeypatch.setattr(FeatureDB, "add_unit_results", dies_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        _interpret(killed, parts)
    monkeypatch.setattr(FeatureDB, "add_unit_results", original)
    resumed = _interpret(killed, parts)
    assert resumed.skipped["feature"] == 6 and resumed.scored["feature"] == 2
    assert _rows(killed) == _rows(full)

    c = compare_units(full)
    text = c.table.read_text()
    assert "| n2g_f1 | feature | " in text and "| n2g_f1 | neurons |" in text and "k-sparse probing" in text
    assert "nan" not in text.lower()
    for reason in {u[3] for u in unscored}:
        assert reason in text  # a unit without a score is counted with its reason, not averaged in


def test_errors_name_the_command_to_run(capsys, tmp_path, parts):
    lm, sae, tokens, _ = parts
    assert main(["interpret", str(tmp_path / "nope")]) == 1
    assert "monosemantic features" in capsys.readouterr().err
    bare = tmp_path / "bare"
    build_feature_db(bare, lm=lm, sae=sae, tokens=tokens, layer=2, n_tokens=600, neurons=False, progress=False)
    assert main(["interpret", str(bare)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--neurons" in err
    assert main(["interpret", str(bare), "--units", "feature:10,cats:3"]) == 1
    assert "unknown kind 'cats'" in capsys.readouterr().err
    dead = tmp_path / "dead"
    silent = TinySAE(lm.d_model, 48, scale=3.0)
    silent.b_enc.data[:] = -1e6  # nothing ever fires
    build_feature_db(dead, lm=lm, sae=silent, tokens=tokens, layer=2, n_tokens=600, neurons=True, progress=False)
    assert main(["interpret", str(dead)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "live features" in err and "monosemantic train" in err
