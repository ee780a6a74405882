"""Run paths with characters that mean something in a URI (space, #, ?, %) and
non-ASCII letters: the feature database opens (read-only too), the web server and
`=Nx` steering read it, and the whole pipeline runs there. A writer killed
mid-transaction leaves a hot journal: the read-only server still opens the database."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monosemantic.features import FeatureDB
from monosemantic.steering.run import read_max_acts

HOSTILE_NAME = "my run #1? 100% é日本"


@pytest.fixture
def hostile_run(web_run, tmp_path) -> Path:
    run = tmp_path / HOSTILE_NAME
    shutil.copytree(web_run, run)
    return run


def test_feature_db_opens_under_a_hostile_path(hostile_run):
    before = sorted(p.name for p in hostile_run.parent.iterdir())
    for readonly in (True, False):
        with FeatureDB(hostile_run, readonly=readonly) as db:
            assert db.meta["n_features"] == 48
    assert read_max_acts(hostile_run / "features.db", 48).max() > 0  # the steering "=Nx" unit
    assert sorted(p.name for p in hostile_run.parent.iterdir()) == before, "a stray file appeared beside the run"


def test_web_server_reads_a_hostile_path(hostile_run):
    from fastapi.testclient import TestClient

    from monosemantic.web import create_app

    with TestClient(create_app(hostile_run, model=False)) as c:
        info = c.get("/api/run").json()
        assert info["features_db_error"] is None and info["features_db"]["n_features"] == 48
        assert c.get("/features/3").status_code == 200


def test_hot_journal_of_a_killed_writer_is_rolled_back(hostile_run):
    db_path = hostile_run / "features.db"
    with FeatureDB(hostile_run) as db:
        expected = db.export(3)
    kill_mid_write = (
        "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA cache_size=1'); c.execute('BEGIN'); "
        "c.execute(\"UPDATE features SET max_act = -1\"); c.execute(\"DELETE FROM meta\"); os._exit(9)")
    subprocess.run([sys.executable, "-c", kill_mid_write, str(db_path)], check=False)
    assert Path(f"{db_path}-journal").is_file(), "the killed writer left no journal: the test did not set up the case"
    with FeatureDB(hostile_run, readonly=True) as db:
        assert db.export(3) == expected


@pytest.mark.slow  # ~50 s on a loaded 2-core machine; the database, server and steering cases above run by default
def test_pipeline_runs_in_a_hostile_directory(tiny_model_dirs, tmp_path, capsys):
    """The whole main job at tiny sizes (a tiny Llama, a text file) in a directory whose
    name holds a space, #, ?, % and non-ASCII; then `=Nx` steering on that run."""
    from monosemantic.cli.main import main

    text = tmp_path / "corpus.txt"
    text.write_text("\n\n".join(f"Paragraph {i}: the river flows past the mill and the mountain village {i % 7}." for i in range(300)))
    run = tmp_path / HOSTILE_NAME / "run"
    code = main(["pipeline", str(run), "--model", str(tiny_model_dirs["llama"]), "--layer", "2", "--inputs", str(text),
                 "--tokens", "3000", "--ctx-len", "32", "--latents", "32", "--train-tokens", "4096", "--batch-size", "256",
                 "--eval-tokens", "512", "--feature-tokens", "512", "--dtype", "float32"])
    assert code == 0, capsys.readouterr().err[-2000:]
    assert (run / "report" / "index.html").is_file() and (run / "pipeline.json").is_file()
    with FeatureDB(run, readonly=True) as db:
        assert db.meta["n_features"] == 32
    code = main(["steer", str(run), "--prompt", "The river", "--feature", "0=2x", "--max-new-tokens", "4"])
    assert code == 0, capsys.readouterr().err[-2000:]
    assert sorted(p.name for p in (tmp_path / HOSTILE_NAME).iterdir()) == ["run"], "a stray file appeared beside the run"
