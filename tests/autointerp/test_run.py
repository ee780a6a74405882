"""explain_run on a tiny real features.db through the real HTTP client: scores stored
per scorer and explainer, failures recorded instead of raised, and a run interrupted
half way (server down, or the process killed) resumes without re-asking a prompt."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from llm_server import LLMServer

from monosemantic.autointerp import explain_run
from monosemantic.autointerp.clients import ClientError, OpenAIClient
from monosemantic.features import FeatureDB

CHEAP = dict(per_level=1, negatives=2)


def populated(run, n: int) -> str:
    """n feature ids with examples enough for every scorer (many contexts and some
    non-activating ones): most features of a random tiny SAE are too rare or too dense."""
    with sqlite3.connect(run / "features.db") as c:
        ids = [i for (i,) in c.execute(
            "SELECT feature_id FROM examples WHERE kind = 'feature' GROUP BY feature_id "
            "HAVING COUNT(DISTINCT CASE WHEN section != 'negative' THEN context_id END) >= 8 "
            "AND SUM(section = 'negative') >= 2 ORDER BY feature_id")]
    assert len(ids) >= n
    return ",".join(map(str, ids[:n]))


@pytest.fixture
def server():
    with LLMServer() as s:
        yield s


def _client(server, run, **kw):
    return OpenAIClient(base_url=server.url, model="rules", backoff=0.01, cache=run / "autointerp" / "cache.sqlite", **kw)


def _cached_keys(run) -> set[str]:
    with sqlite3.connect(run / "autointerp" / "cache.sqlite") as c:
        return {k for (k,) in c.execute("SELECT key FROM responses")}


@pytest.mark.parametrize("explainer", ["tokens", "llm"])
def test_explain_stores_explanations_and_scores(server, run, explainer):
    r = explain_run(run, populated(run, 4), explainer=explainer, client=_client(server, run), **CHEAP)
    assert r.selected == 4 and r.done == 4 and r.skipped == 0 and not r.failed
    assert set(r.scores) == {"rubric", "detection", "fuzzing", "simulation"} and all(len(v) == 4 for v in r.scores.values())
    assert r.usage["requests"] == server.requests and r.usage["prompt_tokens"] == server.usage["prompt_tokens"]
    with FeatureDB(run) as db:
        fid = db.conn.execute("SELECT feature_id FROM explanations LIMIT 1").fetchone()[0]
        f = db.get(fid)
    assert f.explanation and '"' in f.explanation  # names tokens in quotes
    by = {s["scorer"]: s for s in f.scores}
    assert set(by) == {f"{s}/{explainer}" for s in ("rubric", "detection", "fuzzing", "simulation")}
    assert by[f"rubric/{explainer}"]["details"]["client"] == "openai:rules"
    assert 0 <= by[f"rubric/{explainer}"]["score"] <= 3 and 0 <= by[f"detection/{explainer}"]["score"] <= 1


def test_thin_features_are_recorded_failures(server, run):
    r = explain_run(run, "random:48", explainer="tokens", scorers="detection", client=_client(server, run), **CHEAP)
    with FeatureDB(run / "features.db", readonly=True) as db:
        live = len(db.live_densities("feature"))
    assert 0 < live < 48 and r.selected == live and r.done == live and r.failed  # dead features are not selected
    reasons = " ".join(f["reason"] for f in r.failed)
    assert "held-out activating examples" in reasons and "no non-activating example" in reasons


def test_neurons_and_stratified_selection(server, run):
    r = explain_run(run, features="stratified:3", kind="neuron", explainer="tokens", scorers="rubric",
                    client=_client(server, run), per_level=1, negatives=2)
    assert r.kind == "neuron" and r.selected == 3 and r.done == 3
    with FeatureDB(run) as db:
        assert db.conn.execute("SELECT COUNT(*) FROM scores WHERE kind = 'neuron'").fetchone()[0] == 3


def test_unreadable_replies_do_not_stop_the_batch(server, run):
    server.default = "nonumber"
    r = explain_run(run, populated(run, 4), explainer="tokens", scorers="rubric,detection", client=_client(server, run), **CHEAP)
    assert r.done == 4 and len(r.failed) == 8 and not r.scores
    assert all("no activating example could be rated" in f["reason"] or "no reply" in f["reason"] for f in r.failed)
    assert (run / "autointerp" / "log.jsonl").read_text().count("failed") == 8


def test_a_wrong_key_stops_the_run(server, run):
    server.default = "401"
    with pytest.raises(ClientError, match="401"):
        explain_run(run, populated(run, 4), explainer="tokens", scorers="detection", client=_client(server, run), **CHEAP)


def test_resume_after_the_server_went_down(server, run):
    server.fail_after = 13  # answers 13 prompts, then 500s (the 4 features need more; 13 ends inside a feature)
    ids = populated(run, 4)
    first = explain_run(run, ids, explainer="tokens", client=_client(server, run, max_retries=0), **CHEAP)
    assert first.failed and first.done == 4  # every feature tried, failures recorded
    answered = set(server.answered)
    assert answered == _cached_keys(run) and len(answered) == 13
    server.fail_after, server.answered, server.granted = None, [], 0
    second = explain_run(run, ids, explainer="tokens", client=_client(server, run), **CHEAP)
    assert not second.failed and second.usage["cache_hits"] > 0  # features finished in the first run are skipped
    assert not set(server.answered) & answered  # nothing asked twice
    asked = server.requests
    third = explain_run(run, ids, explainer="tokens", client=_client(server, run), **CHEAP)
    assert third.skipped == 4 and third.done == 0 and server.requests == asked


def test_resume_after_kill_9(server, run):
    server.delay = 0.02
    cmd = [sys.executable, "-m", "monosemantic", "explain", str(run), "--client", "openai", "--base-url", server.url,
           "--model", "rules", "--explainer", "tokens", "--features", populated(run, 6), "--per-level", "1", "--concurrency", "2"]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(server.answered) < 30 and time.time() < deadline and child.poll() is None:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    cached = _cached_keys(run)
    assert 20 <= len(cached) < 100  # half way (a reply in flight at the kill is not cached)
    server.answered = []
    from monosemantic.cli.main import main

    assert main(cmd[3:]) == 0
    assert not set(server.answered) & cached
    with FeatureDB(run) as db:
        assert db.conn.execute("SELECT COUNT(DISTINCT feature_id) FROM explanations").fetchone()[0] == 6


def test_label_features_labels_every_live_feature_offline(run):
    from monosemantic.autointerp import LABEL_EXPLAINER, label_features
    from monosemantic.features import FeatureDB

    result = label_features(run)  # no client: the token explainer needs no model
    with FeatureDB(run / "features.db", readonly=True) as db:
        live = {r[0] for r in db.conn.execute("SELECT id FROM features WHERE kind = 'feature' AND count > 0")}
        labelled = {r[0] for r in db.conn.execute("SELECT feature_id FROM explanations WHERE kind = 'feature' AND explainer = ?", (LABEL_EXPLAINER,))}
        assert live and labelled == live - {f["id"] for f in result.failed}
        assert len(labelled) >= 0.8 * len(live)
        fid = min(labelled)
        f = db.get(fid)
        assert f.explanation.startswith("Fires on the tokens")
        # the label names tokens the feature actually fires on in its top examples
        named = f.explanation[len("Fires on the tokens "):]
        top_tokens = {t.strip() for e in f.top for t, a in zip(e.tokens, e.acts) if a > 0}
        assert any(f'"{t}"' in named for t in top_tokens if t)
        assert all(r.explanation for r in db.list(live_only=True, limit=None) if r.id in labelled)
    assert label_features(run).skipped == len(labelled)  # resumable: nothing is redone
