"""`monosemantic explain` and `interpret --table-only` on a tiny real run against the loopback
server, and their one-line errors for bad inputs."""

from __future__ import annotations

import json

import pytest
from llm_server import LLMServer

from monosemantic.cli.main import main


@pytest.fixture
def server():
    with LLMServer() as s:
        yield s


def _explain(run, server, *extra):
    return ["explain", str(run), "--client", "openai", "--base-url", server.url, "--model", "rules",
            "--explainer", "tokens", "--scorer", "rubric,simulation", "--per-level", "1", *extra]


def _one_line_error(capsys, argv, after_progress: bool = False) -> str:
    assert main(argv) == 1
    full = capsys.readouterr().err.strip()
    err = full.split("\n")[-1]  # a run that started shows its progress bar first
    assert err.startswith("monosemantic: error:") and "Traceback" not in full
    assert after_progress or err == full
    return err


def test_explain_then_compare_with_neurons(capsys, run, server):
    assert main(_explain(run, server, "--features", "random:6")) == 0
    out = capsys.readouterr().out
    assert "features: 6 selected, 6 tried now, 0 already done" in out and "rubric" in out and "95% CI" in out
    assert f"requests {server.requests} (cache hits 0" in out
    assert main(_explain(run, server, "--features", "random:6", "--kind", "neuron")) == 0
    assert "neurons: 6 selected" in capsys.readouterr().out
    asked = server.requests
    assert main(_explain(run, server, "--features", "random:6")) == 0  # again: nothing asked
    assert "already done" in capsys.readouterr().out and server.requests == asked
    assert main(["interpret", str(run), "--table-only"]) == 0
    out = capsys.readouterr().out
    assert "| rubric/tokens | feature | 5 |" in out  # one of the 6 is too rare to score
    assert "| rubric/tokens | neuron | 6 |" in out
    assert "| rubric/tokens | neurons |" in out  # the difference features − neurons
    rows = json.loads((run / "autointerp" / "compare.json").read_text())["rows"]
    assert all(r["lo"] <= r["mean"] <= r["hi"] for r in rows) and len(rows) == 4
    assert (run / "autointerp" / "compare.png").stat().st_size > 10_000


def test_errors_are_one_line(capsys, run, built_run_no_neurons, tmp_path, server):
    assert "does not exist" in _one_line_error(capsys, _explain(tmp_path / "nope", server))
    assert "--neurons" in _one_line_error(capsys, _explain(built_run_no_neurons, server, "--kind", "neuron"))
    for spec, says in [("random:x", "random:N"), ("random:0", "at least 1"), ("cats", "ids like"), ("3,9999", "no live feature 9999"),
                       ("", "names no feature")]:
        assert says in _one_line_error(capsys, _explain(run, server, "--features", spec))
    assert "unknown scorer" in _one_line_error(capsys, _explain(run, server, "--scorer", "rubric,vibes"))
    assert "per_level" in _one_line_error(capsys, _explain(run, server, "--per-level", "0"))
    assert "no scores" in _one_line_error(capsys, ["interpret", str(run), "--table-only"])
    assert server.requests == 0


def test_bad_key_stops_with_one_line(capsys, run, server):
    server.default = "401"
    err = _one_line_error(capsys, _explain(run, server, "--features", "random:8"), after_progress=True)
    assert "HTTP 401" in err and server.requests <= 24  # stops with what was in flight, not after ~150 prompts
