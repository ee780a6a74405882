"""Cases that used to exit 0 with a wrong or misleading result, or leave debris:
training to all-dead latents, "FVE nan" after a resume at the final step, a failed
harvest that pinned its settings, temporaries of killed writers, undecodable bytes
in metrics.jsonl, a damaged row in features.db."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from fastapi.testclient import TestClient

from monosemantic import atomic
from monosemantic.cli.main import main
from monosemantic.run import read_metrics
from monosemantic.web import create_app


@pytest.fixture
def npy(tmp_path):
    path = tmp_path / "acts.npy"
    rng = np.random.default_rng(0)
    np.save(path, (rng.normal(size=(4096, 16)) * rng.random((4096, 16)) * 3).astype(np.float32))
    return path


def _train(run, npy, *flags):
    return main(["train", str(run), "--activations", str(npy), "--latents", "32", "--train-tokens", "8192", "--batch-size", "256",
                 "--log-every", "4", "--train-dtype", "float32", *flags])


def test_training_to_all_dead_latents_warns(npy, tmp_path, capsys):
    assert _train(tmp_path / "dead", npy, "--lr", "1", "--l1", "0") == 0
    err = capsys.readouterr().err
    assert "monosemantic: warning:" in err and ("dead" in err or "FVE" in err), err
    assert _train(tmp_path / "fine", npy) == 0
    assert "warning" not in capsys.readouterr().err


def test_resume_at_the_final_step_reports_the_last_metrics(npy, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, npy) == 0
    first = capsys.readouterr().out
    shutil.rmtree(run / "sae")  # the checkpoint at the final step stays
    assert _train(run, npy, "--resume") == 0
    again = capsys.readouterr().out
    assert "FVE nan" not in again and again.split("FVE ")[1][:5] == first.split("FVE ")[1][:5], (first, again)


def test_a_harvest_that_failed_before_writing_data_can_be_rerun_with_new_flags(tiny_model_dirs, tmp_path, capsys):
    run, text = tmp_path / "run", tmp_path / "corpus.txt"
    model = str(tiny_model_dirs["llama"])
    assert main(["harvest", str(run), "--model", model, "--layer", "2", "--inputs", str(tmp_path / "missing.txt"), "--tokens", "500",
                 "--ctx-len", "32"]) != 0
    text.write_text("\n\n".join(f"Paragraph {i} about the river and the mill." for i in range(200)))
    capsys.readouterr()
    assert main(["harvest", str(run), "--model", model, "--layer", "2", "--inputs", str(text), "--tokens", "500",
                 "--ctx-len", "32"]) == 0, capsys.readouterr().err


def test_temporaries_of_killed_writers_are_removed(tmp_path):
    target = tmp_path / "latest.pt"
    code = ("import os, sys; sys.path.insert(0, sys.argv[2]); from monosemantic import atomic\n"
            "with atomic.atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'x' * 100000); os._exit(9)")
    subprocess.run([sys.executable, "-c", code, str(target), os.environ.get("PYTHONPATH", "src").split(os.pathsep)[0]])
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".latest.pt.tmp-"), left  # what kill -9 leaves
    atomic.write_bytes(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


def test_undecodable_metrics_lines_are_skipped(web_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(web_run, run)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 999, "loss": 1.0}\n\xff\xfe\x00garbage \xc3\n{"step": 1000, "fve": 0.5}\n')
    records = read_metrics(run / "metrics.jsonl")
    assert records[-1] == {"step": 1000, "fve": 0.5} and all(isinstance(r, dict) for r in records)
    with TestClient(create_app(run, model=False)) as c:
        assert c.get("/").status_code == 200
        assert c.get("/api/run").json()["n_metrics_records"] == len(records)
    assert main(["report", str(run)]) == 0, capsys.readouterr().err


def test_a_damaged_row_gives_a_one_line_error_page(web_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(web_run, run)
    with sqlite3.connect(run / "features.db") as conn:
        conn.execute("UPDATE features SET hist = x'00ff', neighbours = x'0102' WHERE kind = 'feature' AND id = 3")
        conn.execute("UPDATE examples SET acts = x'ffff' WHERE kind = 'feature' AND feature_id = 3")
    with TestClient(create_app(run, model=False), raise_server_exceptions=False) as c:
        for url in ("/features/3", "/api/features/3"):
            r = c.get(url)
            assert r.status_code == 500 and "features.db" in r.text and "feature 3" in r.text, (url, r.text[:300])
        assert c.get("/features/4").status_code == 200  # the rest of the database still serves
